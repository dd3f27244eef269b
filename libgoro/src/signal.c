// SPDX-License-Identifier: MIT
/*
 * signal.c - goro_signal_notify / goro_signal_stop (Go's os/signal).
 *
 * A signal handler may take no runtime lock and touch no channel, so
 * delivery has two halves, as Go's sigsend/signal_recv:
 *
 *  1. The handler (preempt.c's, installed for every notified signal and
 *     for the preemption signal) sets sig.pending[signo] and wakes the
 *     forwarder: a futex word, async-signal-safe.
 *  2. The forwarder, a runtime goroutine started by the first notify,
 *     sleeps on that word between goro_syscall_enter/exit (its P is
 *     handed off meanwhile, so it costs a parked thread, not a P), then
 *     takes the pending bits and try-sends each signal number, an int,
 *     to every channel registered for it under sig.lock.  A full channel
 *     drops the signal, as Go's does.
 *
 * goro_signal_stop removes a channel under sig.lock, so once it returns
 * no send to that channel is under way or will start.  The preemption
 * signal keeps its handler whatever is registered: notify for SIGURG
 * sees every SIGURG, the runtime's own included, as Go's does.
 *
 * Ms start with every signal blocked but the runtime's; a notified
 * signal must be deliverable to a goroutine that raise()s it, so each M
 * unblocks the notified set when it next schedules (sigmask_gen).
 *
 * Like Go, a program that asked for signals never reports deadlock: the
 * forwarder is in a syscall, waiting for a signal that may come.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "goro.h"
#include "runtime.h"

#define SIG_NOTIFY_MAX	128

struct signotify {
	struct goro_chan *ch;
	int signo;
};

static struct {
	struct rtlock lock;
	struct signotify tab[SIG_NOTIFY_MAX];	/* under lock */
	int ntab;
	uint32_t wanted[NSIG];	/* atomic: handler forwards these */
	uint32_t pending[NSIG];	/* atomic: caught, not yet forwarded */
	uint32_t wake;		/* futex: pending bits set */
	bool started;		/* forwarder running (under lock) */
	sigset_t mask;		/* under lock: signals ever notified */
} sig;

/* Async-signal-safe: called by the handler for every signal it gets. */
bool signal_forward(int signo)
{
	if (signo <= 0 || signo >= NSIG ||
	    !__atomic_load_n(&sig.wanted[signo], __ATOMIC_ACQUIRE))
		return false;
	__atomic_store_n(&sig.pending[signo], 1, __ATOMIC_RELEASE);
	if (!__atomic_exchange_n(&sig.wake, 1, __ATOMIC_ACQ_REL))
		syscall(SYS_futex, &sig.wake, FUTEX_WAKE_PRIVATE, 1, NULL,
			NULL, 0);
	return true;
}

/* atomic: bumped when sig.wanted grows; each M unblocks the new signals
 * when it next schedules (signal_sync_mask in runtime.h) */
uint32_t signal_gen;

void signal_sync_mask_slow(struct m *mp, uint32_t gen)
{
	sigset_t set;

	lock(&sig.lock);
	set = sig.mask;
	unlock(&sig.lock);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	mp->sigmask_gen = gen;
}

static void forward_pending(void)
{
	lock(&sig.lock);
	for (int s = 1; s < NSIG; s++) {
		if (!__atomic_exchange_n(&sig.pending[s], 0, __ATOMIC_ACQ_REL))
			continue;
		for (int i = 0; i < sig.ntab; i++) {
			int v = s;

			if (sig.tab[i].signo == s)
				goro_chan_try_send(sig.tab[i].ch, &v);
		}
	}
	unlock(&sig.lock);
}

static void sigforwarder(void *arg)
{
	(void)arg;
	for (;;) {
		goro_syscall_enter();
		while (!__atomic_exchange_n(&sig.wake, 0, __ATOMIC_ACQ_REL))
			syscall(SYS_futex, &sig.wake, FUTEX_WAIT_PRIVATE, 0,
				NULL, NULL, 0);
		goro_syscall_exit();
		forward_pending();
	}
}

static bool signo_ok(int signo)
{
	switch (signo) {
	case SIGKILL: case SIGSTOP:
	/* synchronous faults and the runtime's own crash paths */
	case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGTRAP:
		return false;
	}
	return signo > 0 && signo < NSIG;
}

static bool notified(int signo)
{
	for (int i = 0; i < sig.ntab; i++)
		if (sig.tab[i].signo == signo)
			return true;
	return false;
}

GORO_API int goro_signal_notify(struct goro_chan *ch, int signo)
{
	struct m *mp = getm();
	sigset_t one;
	int err = 0;

	if (!ch || !signo_ok(signo))
		return -EINVAL;
	if (!mp || !mp->curg)
		return -EPERM;
	lock(&sig.lock);
	for (int i = 0; i < sig.ntab; i++)
		if (sig.tab[i].ch == ch && sig.tab[i].signo == signo)
			goto out_unlock;	/* already */
	if (sig.ntab == SIG_NOTIFY_MAX) {
		err = -ENOSPC;
		goto out_unlock;
	}
	if (!notified(signo) && signo != preempt_signo) {
		err = sighandler_install(signo);
		if (err)
			goto out_unlock;
	}
	sig.tab[sig.ntab].ch = ch;
	sig.tab[sig.ntab].signo = signo;
	sig.ntab++;
	__atomic_store_n(&sig.wanted[signo], 1, __ATOMIC_RELEASE);
	if (!sigismember(&sig.mask, signo)) {
		sigaddset(&sig.mask, signo);
		__atomic_add_fetch(&signal_gen, 1, __ATOMIC_RELEASE);
	}
	if (!sig.started) {
		sig.started = true;
		err = spawn_system(sigforwarder);
		if (err)
			sig.started = false;
	}
out_unlock:
	unlock(&sig.lock);
	if (err)
		return err;
	/* This thread at once; the other Ms when they next schedule. */
	sigemptyset(&one);
	sigaddset(&one, signo);
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	return 0;
}

GORO_API void goro_signal_stop(struct goro_chan *ch)
{
	struct sigaction dfl = { 0 };
	int removed[SIG_NOTIFY_MAX];
	int nremoved = 0;

	lock(&sig.lock);
	for (int i = 0; i < sig.ntab;) {
		if (sig.tab[i].ch != ch) {
			i++;
			continue;
		}
		removed[nremoved++] = sig.tab[i].signo;
		sig.tab[i] = sig.tab[--sig.ntab];
	}
	for (int i = 0; i < nremoved; i++) {
		int s = removed[i];

		if (notified(s))
			continue;
		__atomic_store_n(&sig.wanted[s], 0, __ATOMIC_RELEASE);
		if (s == preempt_signo)
			continue;
		dfl.sa_handler = SIG_DFL;
		sigemptyset(&dfl.sa_mask);
		sigaction(s, &dfl, NULL);
	}
	unlock(&sig.lock);
}
