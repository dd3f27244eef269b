// SPDX-License-Identifier: MIT
/*
 * preempt.c - asynchronous preemption by signal (Go's preempt.go and
 * signal_unix.go's doSigPreempt, in C).
 *
 * The sysmon (sysmon.c, or goro.ko's) sends the preemption signal
 * (SIGURG) to an M whose goroutine has run for a whole time slice.  The
 * handler runs on the M's sigaltstack and decides:
 *
 *  1. Safe point: the M runs a user goroutine (not g0) that is G_RUNNING
 *     on a P, the M holds no runtime lock (m->locks == 0), the
 *     interrupted pc lies in text registered as preemptible, and the
 *     goroutine's stack has room for the saved state.  Then the handler
 *     rewrites the signal context so that, after sigreturn, the goroutine
 *     "calls" goro_asyncpreempt (arch/x86_64/preempt.S), which saves
 *     every register and yields (goro_asyncpreempt2 -> gopreempt: the G
 *     goes to the global run queue, as Go's gopreempt_m), and resumes
 *     exactly where it was when it runs again.
 *  2. Otherwise it only sets gp->preempt; the goroutine yields at the
 *     next runtime call that may switch (channel send and receive,
 *     select: preempt_check()), and the sysmon signals again at the
 *     next slice anyway.
 *
 * Preemptible text.  Only code that keeps no thread-bound state across
 * an instruction may be preempted, since the goroutine may resume on
 * another thread: libgoro itself is never preemptible (its objects' text
 * is renamed to the goro_text section by libgoro.mk, and the linker
 * gives us its bounds), nor is libc (its malloc caches, locks and TLS
 * belong to the thread).  The default is the main executable's
 * executable segments minus goro_text when the executable is dynamic
 * (libc is then elsewhere).  A static executable holds libc too, and
 * its text cannot be told apart from the program's, so the default
 * there is no preemptible text at all (preemption stays cooperative);
 * such programs call goro_preempt_allow_text() on their own code.
 *
 * TSan delivers asynchronous signals late, at its own interceptors, with
 * a copy of the context: rewriting it would do nothing or worse, so the
 * TSan build only sets the flag.  ASan needs nothing: the switch itself
 * goes through mcall, which tells it about the stack change.
 *
 * errno lives in the thread: goro_asyncpreempt2 carries the interrupted
 * errno to the thread the goroutine resumes on.  Other thread-local
 * state of preemptible code is the program's to avoid.
 */
#include <cpuid.h>
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>
#include <linux/goro.h>

#include "goro.h"
#include "runtime.h"

#define TEXT_RANGES	32
/* Stack a preemption needs below the interrupted rsp, beyond the
 * extended-state area: GPRs, red zone and the frames of the yield. */
#define PREEMPT_STACK_MARGIN	(8 << 10)

struct textrange {
	uintptr_t start, end;
};

struct preemptstats preemptstats;
int preempt_signo = SIGURG;
uint32_t goro_xsave_size = 512 + 64;
uint32_t goro_have_xsave;

/* Written by goro_preempt_allow_text (rarely), read by the handler:
 * ranges are published before ntext grows and never shrink in place. */
static struct textrange text[TEXT_RANGES];
static uint32_t ntext;
static bool text_configured;
static struct rtlock textlock;

extern char __start_goro_text[] __attribute__((weak));
extern char __stop_goro_text[] __attribute__((weak));

void goro_asyncpreempt(void);
void goro_asyncpreempt2(void);

static int addtext(uintptr_t start, uintptr_t end)
{
	uint32_t n = __atomic_load_n(&ntext, __ATOMIC_RELAXED);

	if (start >= end)
		return 0;
	if (n == TEXT_RANGES)
		return -ENOSPC;
	text[n].start = start;
	text[n].end = end;
	__atomic_store_n(&ntext, n + 1, __ATOMIC_RELEASE);
	return 0;
}

GORO_API int goro_preempt_allow_text(const void *start, const void *end)
{
	int err = 0;

	if (!start && !end) {
		lock(&textlock);
		text_configured = true;
		__atomic_store_n(&ntext, 0, __ATOMIC_RELEASE);
		unlock(&textlock);
		return 0;
	}
	if (!start || !end || (uintptr_t)start >= (uintptr_t)end)
		return -EINVAL;
	lock(&textlock);
	text_configured = true;
	err = addtext((uintptr_t)start, (uintptr_t)end);
	unlock(&textlock);
	return err;
}

static bool preemptible_pc(uintptr_t pc)
{
	uint32_t n = __atomic_load_n(&ntext, __ATOMIC_ACQUIRE);

	for (uint32_t i = 0; i < n; i++)
		if (pc >= text[i].start && pc < text[i].end)
			return true;
	return false;
}

/* A range minus libgoro's own text. */
static void addtext_but_goro(uintptr_t start, uintptr_t end)
{
	uintptr_t gs = (uintptr_t)__start_goro_text;
	uintptr_t ge = (uintptr_t)__stop_goro_text;

	if (!gs || ge <= start || gs >= end) {
		addtext(start, end);
		return;
	}
	addtext(start, gs);
	addtext(ge, end);
}

/* dl_iterate_phdr visits the main executable first. */
static int exe_text(struct dl_phdr_info *info, size_t size, void *arg)
{
	bool dynamic = false;

	(void)size;
	(void)arg;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_INTERP)
			dynamic = true;
	if (!dynamic)
		return 1;	/* static: libc is in there too */
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		addtext_but_goro(info->dlpi_addr + ph->p_vaddr,
				 info->dlpi_addr + ph->p_vaddr + ph->p_memsz);
	}
	return 1;
}

static void xsave_init(void)
{
	unsigned int a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE))
		return;
	__cpuid_count(0xd, 0, a, b, c, d);
	if (b < 576)
		return;
	goro_xsave_size = b + 64;
	goro_have_xsave = 1;
}

int sighandler_install(int sig);

void preempt_init(void)
{
	xsave_init();
	lock(&textlock);
	if (!text_configured)
		dl_iterate_phdr(exe_text, NULL);
	unlock(&textlock);
	sighandler_install(preempt_signo);
}

/* ---------------------------------------------------------------------
 * The signal handler (shared with goro_signal_notify's signals)
 * ------------------------------------------------------------------- */

static bool async_preemptible(struct m *mp, struct g *gp, ucontext_t *uc)
{
	uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	/* TSan runs async handlers late on a copied context; under ASan an
	 * injected switch was seen to nest in one of ASan's fiber switches
	 * (net_echo, about one run in two).  Both builds preempt at the
	 * next runtime call instead. */
	return false;
#endif
	if (debug.asyncpreemptoff || mp->locks || !mp->p)
		return false;
	if (readgstatus(gp) != G_RUNNING || !preemptible_pc(pc))
		return false;
	return sp > gp->stack_lo &&
	       sp - gp->stack_lo > goro_xsave_size + PREEMPT_STACK_MARGIN &&
	       sp <= gp->stack_hi;
}

static void dosigpreempt(ucontext_t *uc)
{
	struct m *mp = getm();
	struct g *gp;
	uint64_t *sp;

	if (!mp)
		return;
	__atomic_add_fetch(&preemptstats.signals, 1, __ATOMIC_RELAXED);
	gp = mp->curg;
	if (!gp || getg() != gp)
		return;		/* on g0: the scheduler runs anyway */
	if (!async_preemptible(mp, gp, uc)) {
		__atomic_store_n(&gp->preempt, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&preemptstats.deferred, 1, __ATOMIC_RELAXED);
		return;
	}
	/* Inject a call: skip the red zone, push the pc, jump. */
	sp = (uint64_t *)(uc->uc_mcontext.gregs[REG_RSP] - 128);
	*--sp = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
	uc->uc_mcontext.gregs[REG_RSP] = (greg_t)(uintptr_t)sp;
	uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)goro_asyncpreempt;
	/*
	 * gp is on its way out: tell goro.ko's sysmon now, not when g0
	 * gets there.  Saving the registers and switching can take a slice
	 * under emulation, and the sysmon, still seeing gp RUNNING since
	 * the same time, signalled again into that runtime code, where
	 * the signal only found no safe point (over half of them did).
	 */
	mslot_update(mp, GORO_MSTATUS_SCHED);	/* no-op without goro.ko */
}

static void sighandler(int sig, siginfo_t *info, void *uctx)
{
	int saved = errno;

	(void)info;
	if (sig == preempt_signo) {
		struct m *mp = getm();

		if (mp && kmod_sysmon)
			handoff_lost(mp);
		dosigpreempt(uctx);
	}
	signal_forward(sig);
	errno = saved;
}

int sighandler_install(int sig)
{
	struct sigaction sa = { 0 };

	sa.sa_sigaction = sighandler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigfillset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL))
		return -errno;
	return 0;
}

/* ---------------------------------------------------------------------
 * The goroutine's side
 * ------------------------------------------------------------------- */

/* Not inlined, so that errno's address is computed on the thread that
 * runs it (glibc's __errno_location is a const function). */
__attribute__((noinline, noipa)) static int get_errno(void)
{
	return errno;
}

__attribute__((noinline, noipa)) static void set_errno(int e)
{
	errno = e;
}

/* Called by goro_asyncpreempt with every register saved. */
void goro_asyncpreempt2(void)
{
	struct g *gp = getg();
	int e = get_errno();

	__atomic_store_n(&gp->preempt, 0, __ATOMIC_RELAXED);
	__atomic_add_fetch(&preemptstats.async, 1, __ATOMIC_RELAXED);
	gopreempt();
	set_errno(e);
}

void preempt_check_slow(struct g *gp)
{
	struct m *mp = getm();

	if (gp != mp->curg || mp->locks || !mp->p ||
	    readgstatus(gp) != G_RUNNING)
		return;
	if (!__atomic_exchange_n(&gp->preempt, 0, __ATOMIC_RELAXED))
		return;
	__atomic_add_fetch(&preemptstats.deferred_taken, 1, __ATOMIC_RELAXED);
	gopreempt();
}

/* The caller's goroutine runs on a P that a stop-the-world waits for
 * (the stopper's own P is P_GCSTOP): have preempt_check yield it, which
 * checks the rest (no runtime lock held, G_RUNNING), as for a signal. */
void stw_check_slow(void)
{
	struct g *gp = getg();
	struct m *mp = getm();

	if (gp && mp && gp == mp->curg && mp->p &&
	    __atomic_load_n(&mp->p->status, __ATOMIC_RELAXED) == P_RUNNING)
		__atomic_store_n(&gp->preempt, 1, __ATOMIC_RELAXED);
}
