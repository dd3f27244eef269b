// SPDX-License-Identifier: MIT
/*
 * signal_test: goro_signal_notify / goro_signal_stop (Go's os/signal),
 * and SIGURG notification beside preemption.
 */
#include <pthread.h>
#include <signal.h>

#include "kselftest_harness.h"
#include "sched_test.h"

#define MS	1000000LL

/* Receive an int from ch within ms; -1 on timeout. */
static int recv_within(struct goro_chan *ch, int64_t ms)
{
	struct goro_chan *t = goro_after(ms * MS);
	int v = -1;
	int64_t now;
	struct goro_select_case cs[2] = {
		{ .dir = GORO_SELECT_RECV, .ch = ch, .val = &v },
		{ .dir = GORO_SELECT_RECV, .ch = t, .val = &now },
	};
	int i = goro_select(cs, 2, 0);

	goro_chan_free(t);
	return i == 0 ? v : -1;
}

static int r_first, r_second, r_other, r_stopped_len;

static void notify_main(void *arg)
{
	struct goro_chan *ch = goro_chan_make(sizeof(int), 4);
	struct goro_chan *ch2 = goro_chan_make(sizeof(int), 4);

	(void)arg;
	if (goro_signal_notify(ch, SIGUSR1))
		return;
	raise(SIGUSR1);
	r_first = recv_within(ch, 2000);
	/* process-directed, to whichever thread takes it; TSan runs
	 * handlers only at its interceptors, and the threads that do not
	 * block the signal sleep in raw futex calls: never, there */
	if (!TSAN)
		kill(getpid(), SIGUSR1);
	else
		raise(SIGUSR1);
	r_second = recv_within(ch, 2000);
	/* after stop, only the other channel gets it */
	if (goro_signal_notify(ch2, SIGUSR1))
		return;
	goro_signal_stop(ch);
	raise(SIGUSR1);
	r_other = recv_within(ch2, 2000);
	goro_sleep(10 * MS);
	r_stopped_len = (int)goro_chan_len(ch);
	goro_signal_stop(ch2);
}

TEST(notify_and_stop)
{
	ASSERT_EQ(0, goro_main(notify_main, NULL));
	ASSERT_EQ(SIGUSR1, r_first);
	ASSERT_EQ(SIGUSR1, r_second);
	ASSERT_EQ(SIGUSR1, r_other);
	ASSERT_EQ(0, r_stopped_len);
}

static int e_kill, e_stop, e_null, e_segv, e_zero, e_big;

static void errors_main(void *arg)
{
	struct goro_chan *ch = goro_chan_make(sizeof(int), 1);

	(void)arg;
	e_kill = goro_signal_notify(ch, SIGKILL);
	e_stop = goro_signal_notify(ch, SIGSTOP);
	e_segv = goro_signal_notify(ch, SIGSEGV);
	e_null = goro_signal_notify(NULL, SIGUSR2);
	e_zero = goro_signal_notify(ch, 0);
	e_big = goro_signal_notify(ch, NSIG);
}

TEST(notify_errors)
{
	struct goro_chan *dummy = (struct goro_chan *)&dummy;

	ASSERT_EQ(-EPERM, goro_signal_notify(dummy, SIGUSR1));
	ASSERT_EQ(0, goro_main(errors_main, NULL));
	ASSERT_EQ(-EINVAL, e_kill);
	ASSERT_EQ(-EINVAL, e_stop);
	ASSERT_EQ(-EINVAL, e_segv);
	ASSERT_EQ(-EINVAL, e_null);
	ASSERT_EQ(-EINVAL, e_zero);
	ASSERT_EQ(-EINVAL, e_big);
}

/* After the last stop, the signal has its default action again. */
static void default_again_main(void *arg)
{
	struct goro_chan *ch = goro_chan_make(sizeof(int), 1);

	(void)arg;
	if (goro_signal_notify(ch, SIGUSR2))
		return;
	goro_signal_stop(ch);
	raise(SIGUSR2);		/* default action: terminate */
	goro_sleep(100 * MS);
	print_str("survived\n");
}

static void default_again_child(void)
{
	goro_main(default_again_main, NULL);
}

TEST(stop_restores_default_action)
{
	char buf[1024];
	int st = run_child(default_again_child, NULL, buf, sizeof(buf));

	ASSERT_TRUE(WIFSIGNALED(st));
	ASSERT_EQ(SIGUSR2, WTERMSIG(st));
	ASSERT_EQ(NULL, strstr(buf, "survived"));
}

/* ---------------------------------------------------------------------
 * SIGURG: notified and still preempting.
 * ------------------------------------------------------------------- */

#define SPIN	__attribute__((section("signal_spin"), noinline))
extern char __start_signal_spin[], __stop_signal_spin[];

static uint32_t urg_stop;
static int urg_got;
static uint64_t urg_async;
static struct tgate urg_gate;

SPIN static void urg_spin(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&urg_stop, __ATOMIC_RELAXED))
		;
	tgate_done(&urg_gate);
}

static void urg_main(void *arg)
{
	struct goro_chan *ch = goro_chan_make(sizeof(int), 16);
	uint64_t async0;

	(void)arg;
	goro_set_maxprocs(1);
	if (goro_preempt_allow_text(__start_signal_spin, __stop_signal_spin))
		return;
	if (goro_signal_notify(ch, SIGURG))
		return;
	raise(SIGURG);
	urg_got = recv_within(ch, 2000);
	/* a spinner on our only P: we run again only by preemption */
	async0 = __atomic_load_n(&preemptstats.async, __ATOMIC_RELAXED);
	tgate_add(&urg_gate, 1);
	go(urg_spin, NULL);
	goro_sleep(50 * MS);
	urg_async = __atomic_load_n(&preemptstats.async, __ATOMIC_RELAXED) -
		    async0;
	__atomic_store_n(&urg_stop, 1, __ATOMIC_RELAXED);
	tgate_wait(&urg_gate);
	goro_signal_stop(ch);
}

TEST(sigurg_notify_coexists_with_preemption)
{
	if (SANITIZED)
		SKIP(return, "sanitizer builds preempt cooperatively only");
	ASSERT_EQ(0, goro_main(urg_main, NULL));
	ASSERT_EQ(SIGURG, urg_got);
	ASSERT_LT(0, urg_async);
}

TEST_HARNESS_MAIN
