// SPDX-License-Identifier: GPL-2.0
/*
 * park_test: M_PARK, M_UNPARK and M_SWITCH behaviour between threads of
 * one process.
 *
 * What is proven here: deadlines are absolute CLOCK_MONOTONIC and
 * honoured (never early, a past one at once); a signal interrupts a park
 * with -EINTR and the same call restarts with the same deadline; the
 * unpark token is a semaphore of one (kept when it comes first, never
 * counted twice, dropped by unregister); M_SWITCH hands the token over
 * even when its own park then fails; and 100 000 M_SWITCH round trips
 * between two threads (20 000 with M_UNPARK + M_PARK) lose no wake-up,
 * checked against a sequence number in shared memory, with a watchdog
 * so that a lost wake-up fails rather than hangs.
 */
#include "goro_test.h"

FIXTURE(park) {
	int fd;
	struct goro_info info;
};

FIXTURE_SETUP(park)
{
	self->fd = goro_open_or_skip();
	ASSERT_EQ(0, goro_get_info(self->fd, &self->info));
}

FIXTURE_TEARDOWN(park)
{
	close(self->fd);
}

static volatile sig_atomic_t got_signal;

static void on_sigusr1(int sig)
{
	(void)sig;
	got_signal++;
}

/* SIGUSR1 without SA_RESTART: an interrupted park returns -EINTR. */
static int install_sigusr1(void)
{
	struct sigaction sa = { .sa_handler = on_sigusr1 };

	sigemptyset(&sa.sa_mask);
	return sigaction(SIGUSR1, &sa, NULL) ? -errno : 0;
}

/* ---- deadlines ----------------------------------------------------------- */

TEST_F(park, timeout_10ms)
{
	uint64_t t0, deadline, t1;

	ASSERT_EQ(0, goro_register(self->fd, NULL));
	t0 = goro_now_ns();
	deadline = t0 + 10 * NSEC_PER_MSEC;
	EXPECT_EQ(-ETIMEDOUT, goro_park(self->fd, deadline));
	t1 = goro_now_ns();
	/* never early; an upper bound only catches "slept forever" in TCG */
	EXPECT_LE(deadline, t1);
	EXPECT_GT(t0 + 5 * NSEC_PER_SEC, t1);
	TH_LOG("10 ms park took %llu us",
	       (unsigned long long)(t1 - t0) / 1000);
}

TEST_F(park, deadline_in_the_past)
{
	uint64_t t0, now;

	ASSERT_EQ(0, goro_register(self->fd, NULL));
	t0 = goro_now_ns();
	EXPECT_EQ(-ETIMEDOUT, goro_park(self->fd, 0));
	EXPECT_EQ(-ETIMEDOUT, goro_park(self->fd, 1));
	now = goro_now_ns();
	EXPECT_EQ(-ETIMEDOUT, goro_park(self->fd, now - 1));
	EXPECT_EQ(-ETIMEDOUT, goro_park(self->fd, now));
	/* "at once": far below any sleep; generous for TCG */
	EXPECT_GT(t0 + NSEC_PER_SEC, goro_now_ns());
}

/*
 * Deadlines beyond KTIME_MAX (but not GORO_NO_DEADLINE) are valid: they
 * mean "practically never", not -EINVAL.
 */
TEST_F(park, huge_deadline_accepted)
{
	ASSERT_EQ(0, goro_register(self->fd, NULL));
	ASSERT_EQ(0, goro_unpark(self->fd, 0));
	EXPECT_EQ(0, goro_park(self->fd, GORO_NO_DEADLINE - 1));
	ASSERT_EQ(0, goro_unpark(self->fd, 0));
	EXPECT_EQ(0, goro_park(self->fd, 1ULL << 63));
}

/* ---- the token ----------------------------------------------------------- */

TEST_F(park, unpark_before_park)
{
	uint64_t t0;
	uint32_t slot;

	ASSERT_EQ(0, goro_register(self->fd, &slot));
	ASSERT_EQ(0, goro_unpark(self->fd, slot));
	t0 = goro_now_ns();
	/* a far deadline: the park must not sleep at all */
	EXPECT_EQ(0, goro_park(self->fd, t0 + 10 * NSEC_PER_SEC));
	EXPECT_GT(t0 + 2 * NSEC_PER_SEC, goro_now_ns());
}

TEST_F(park, token_is_a_semaphore_of_one)
{
	uint32_t slot;

	ASSERT_EQ(0, goro_register(self->fd, &slot));
	ASSERT_EQ(0, goro_unpark(self->fd, slot));
	ASSERT_EQ(0, goro_unpark(self->fd, slot));
	EXPECT_EQ(0, goro_park(self->fd, goro_now_ns() + NSEC_PER_SEC));
	EXPECT_EQ(-ETIMEDOUT,
		  goro_park(self->fd, goro_now_ns() + 20 * NSEC_PER_MSEC));
}

TEST_F(park, unregister_drops_token)
{
	uint32_t slot;

	ASSERT_EQ(0, goro_register(self->fd, &slot));
	ASSERT_EQ(0, goro_unpark(self->fd, slot));
	ASSERT_EQ(0, goro_unregister(self->fd));
	ASSERT_EQ(0, goro_register(self->fd, &slot));
	EXPECT_EQ(-ETIMEDOUT,
		  goro_park(self->fd, goro_now_ns() + 20 * NSEC_PER_MSEC));
}

/* ---- across threads ------------------------------------------------------ */

struct parker {
	int fd;
	pid_t tid;
	uint32_t slot;
	uint64_t deadline;
	int reg_ret;
	int ret[2];
	uint64_t t_end;
	int restarts;			/* parks after the first -EINTR */
	pthread_barrier_t registered;
	pthread_barrier_t go_on;	/* between the two parks, if any */
};

/* Registers, parks once; restarts the park on -EINTR if asked. */
static void *parker_fn(void *arg)
{
	struct parker *pk = arg;

	pk->tid = goro_gettid();
	pk->reg_ret = goro_register(pk->fd, &pk->slot);
	pthread_barrier_wait(&pk->registered);
	if (pk->reg_ret)
		return NULL;
	pk->ret[0] = goro_park(pk->fd, pk->deadline);
	if (pk->restarts) {
		pthread_barrier_wait(&pk->go_on);
		/* the same absolute deadline: that is how a restart works */
		pk->ret[1] = goro_park(pk->fd, pk->deadline);
	}
	pk->t_end = goro_now_ns();
	goro_unregister(pk->fd);
	return NULL;
}

static void parker_init(struct parker *pk, int fd, uint64_t deadline,
			int restarts)
{
	memset(pk, 0, sizeof(*pk));
	pk->fd = fd;
	pk->deadline = deadline;
	pk->restarts = restarts;
	pk->ret[0] = pk->ret[1] = 1;	/* "not returned" */
	pthread_barrier_init(&pk->registered, NULL, 2);
	pthread_barrier_init(&pk->go_on, NULL, 2);
}

TEST_F(park, unpark_wakes_parked_thread)
{
	struct goro_mslot *shm;
	struct parker pk;
	pthread_t th;
	uint64_t t0;

	shm = mmap(NULL, self->info.shm_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, shm);

	t0 = goro_now_ns();
	parker_init(&pk, self->fd, t0 + 20 * NSEC_PER_SEC, 0);
	ASSERT_EQ(0, pthread_create(&th, NULL, parker_fn, &pk));
	pthread_barrier_wait(&pk.registered);
	ASSERT_EQ(0, pk.reg_ret);
	EXPECT_EQ(pk.tid, (pid_t)shm[pk.slot].tid);
	ASSERT_TRUE(goro_wait_in_ioctl(getpid(), pk.tid, 10000));

	/* unparking needs no registration: any thread of the process */
	EXPECT_EQ(0, goro_unpark(self->fd, pk.slot));
	pthread_join(th, NULL);
	EXPECT_EQ(0, pk.ret[0]);
	EXPECT_GT(pk.deadline, pk.t_end);
	EXPECT_EQ(1, shm[pk.slot].nparks);
	EXPECT_EQ(1, shm[pk.slot].nwakes);
	/* the parker unregistered on its way out */
	EXPECT_EQ(0, shm[pk.slot].tid);
	munmap(shm, self->info.shm_size);
}

TEST_F(park, signal_interrupts_then_restart)
{
	struct parker pk;
	pthread_t th;

	ASSERT_EQ(0, install_sigusr1());
	parker_init(&pk, self->fd, goro_now_ns() + 20 * NSEC_PER_SEC, 1);
	ASSERT_EQ(0, pthread_create(&th, NULL, parker_fn, &pk));
	pthread_barrier_wait(&pk.registered);
	ASSERT_EQ(0, pk.reg_ret);
	ASSERT_TRUE(goro_wait_in_ioctl(getpid(), pk.tid, 10000));

	ASSERT_EQ(0, pthread_kill(th, SIGUSR1));
	pthread_barrier_wait(&pk.go_on);
	EXPECT_EQ(-EINTR, pk.ret[0]);
	EXPECT_EQ(1, got_signal);

	/* the restarted park sleeps again and is woken normally */
	ASSERT_TRUE(goro_wait_in_ioctl(getpid(), pk.tid, 10000));
	EXPECT_EQ(0, goro_unpark(self->fd, pk.slot));
	pthread_join(th, NULL);
	EXPECT_EQ(0, pk.ret[1]);
}

TEST_F(park, signal_restart_keeps_deadline)
{
	struct parker pk;
	pthread_t th;
	uint64_t deadline;

	ASSERT_EQ(0, install_sigusr1());
	deadline = goro_now_ns() + 300 * NSEC_PER_MSEC;
	parker_init(&pk, self->fd, deadline, 1);
	ASSERT_EQ(0, pthread_create(&th, NULL, parker_fn, &pk));
	pthread_barrier_wait(&pk.registered);
	ASSERT_EQ(0, pk.reg_ret);
	ASSERT_TRUE(goro_wait_in_ioctl(getpid(), pk.tid, 10000));
	ASSERT_EQ(0, pthread_kill(th, SIGUSR1));
	pthread_barrier_wait(&pk.go_on);
	pthread_join(th, NULL);

	if (pk.ret[0] == -ETIMEDOUT)
		SKIP(return, "the signal came after the deadline (slow VM)");
	EXPECT_EQ(-EINTR, pk.ret[0]);
	/* the restart timed out at the first call's deadline, not later */
	EXPECT_EQ(-ETIMEDOUT, pk.ret[1]);
	EXPECT_LE(deadline, pk.t_end);
	EXPECT_GT(deadline + 3 * NSEC_PER_SEC, pk.t_end);
}

/* A blocked signal does not interrupt a park; it is delivered later. */
TEST_F(park, blocked_signal)
{
	sigset_t set, old;

	ASSERT_EQ(0, install_sigusr1());
	ASSERT_EQ(0, goro_register(self->fd, NULL));
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	ASSERT_EQ(0, pthread_sigmask(SIG_BLOCK, &set, &old));
	ASSERT_EQ(0, raise(SIGUSR1));
	/* blocked: not pending for the park, which times out */
	EXPECT_EQ(-ETIMEDOUT,
		  goro_park(self->fd, goro_now_ns() + 10 * NSEC_PER_MSEC));
	ASSERT_EQ(0, pthread_sigmask(SIG_SETMASK, &old, NULL));
	EXPECT_EQ(1, got_signal);
}

/* M_SWITCH unparks its target even when its own park then fails. */
TEST_F(park, switch_unparks_even_on_timeout)
{
	struct parker pk;
	pthread_t th;
	uint64_t t0;

	ASSERT_EQ(0, goro_register(self->fd, NULL));
	/* the peer registers, then parks with a far deadline */
	parker_init(&pk, self->fd, goro_now_ns() + 20 * NSEC_PER_SEC, 0);
	ASSERT_EQ(0, pthread_create(&th, NULL, parker_fn, &pk));
	pthread_barrier_wait(&pk.registered);
	ASSERT_EQ(0, pk.reg_ret);
	/*
	 * The peer may or may not be parked yet; either way the switch
	 * must leave it with its token (or woken) and time out itself.
	 */
	t0 = goro_now_ns();
	EXPECT_EQ(-ETIMEDOUT, goro_switch(self->fd, pk.slot, 0));
	EXPECT_GT(t0 + 2 * NSEC_PER_SEC, goro_now_ns());
	pthread_join(th, NULL);
	EXPECT_EQ(0, pk.ret[0]);
}

/* M_SWITCH with a parked peer and a deadline: peer wakes, caller times out. */
TEST_F(park, switch_wakes_parked_peer)
{
	struct parker pk;
	pthread_t th;
	uint64_t deadline;

	ASSERT_EQ(0, goro_register(self->fd, NULL));
	parker_init(&pk, self->fd, goro_now_ns() + 20 * NSEC_PER_SEC, 0);
	ASSERT_EQ(0, pthread_create(&th, NULL, parker_fn, &pk));
	pthread_barrier_wait(&pk.registered);
	ASSERT_EQ(0, pk.reg_ret);
	ASSERT_TRUE(goro_wait_in_ioctl(getpid(), pk.tid, 10000));

	deadline = goro_now_ns() + 30 * NSEC_PER_MSEC;
	EXPECT_EQ(-ETIMEDOUT, goro_switch(self->fd, pk.slot, deadline));
	EXPECT_LE(deadline, goro_now_ns());
	pthread_join(th, NULL);
	EXPECT_EQ(0, pk.ret[0]);
}

/*
 * Unparkers hammer slots 0..7 while Ms come and go in them: every
 * unpark meets a live M (0) or a free slot (-ESRCH), never a freed one
 * (the kernel finds the target under RCU); every park returns 0 or
 * -ETIMEDOUT.  Two seconds of it, then the instance must still work.
 */
#define CHURN_MS		4
#define CHURN_UNPARKERS		2

struct churn {
	int fd;
	volatile bool stop;
	long ops[CHURN_MS + CHURN_UNPARKERS];
	int bad[CHURN_MS + CHURN_UNPARKERS];
};

struct churn_arg {
	struct churn *c;
	int id;
};

static void *churn_m_fn(void *arg)
{
	struct churn_arg *ca = arg;
	struct churn *c = ca->c;
	int ret;

	while (!c->stop) {
		ret = goro_register(c->fd, NULL);
		if (!ret) {
			ret = goro_park(c->fd, goro_now_ns() + 100000);
			if (ret == -ETIMEDOUT)
				ret = 0;
		}
		if (!ret)
			ret = goro_unregister(c->fd);
		if (ret && !c->bad[ca->id])
			c->bad[ca->id] = ret;
		c->ops[ca->id]++;
	}
	return NULL;
}

static void *churn_unparker_fn(void *arg)
{
	struct churn_arg *ca = arg;
	struct churn *c = ca->c;
	uint32_t slot = ca->id;
	int ret;

	while (!c->stop) {
		slot = (slot * 5 + 3) & 7;
		ret = goro_unpark(c->fd, slot);
		if (ret && ret != -ESRCH && !c->bad[ca->id])
			c->bad[ca->id] = ret;
		c->ops[ca->id]++;
	}
	return NULL;
}

TEST_F(park, unpark_races_unregister)
{
	const int n = CHURN_MS + CHURN_UNPARKERS;
	struct churn_arg ca[CHURN_MS + CHURN_UNPARKERS];
	pthread_t th[CHURN_MS + CHURN_UNPARKERS];
	struct churn c = { .fd = self->fd };
	long cycles = 0, unparks = 0;
	uint32_t slot;

	for (int i = 0; i < n; i++) {
		ca[i] = (struct churn_arg){ .c = &c, .id = i };
		ASSERT_EQ(0, pthread_create(&th[i], NULL,
					    i < CHURN_MS ? churn_m_fn :
							   churn_unparker_fn,
					    &ca[i]));
	}
	usleep(2000000);
	c.stop = true;
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, c.bad[i]) TH_LOG("thread %d", i);
		EXPECT_LT(0, c.ops[i]) TH_LOG("thread %d", i);
		if (i < CHURN_MS)
			cycles += c.ops[i];
		else
			unparks += c.ops[i];
	}
	TH_LOG("%ld M cycles, %ld unparks", cycles, unparks);

	ASSERT_EQ(0, goro_register(self->fd, &slot));
	EXPECT_EQ(0, slot);
	EXPECT_EQ(-ESRCH, goro_unpark(self->fd, 1));
	EXPECT_EQ(0, goro_unregister(self->fd));
}

/* ---- ping-pong ----------------------------------------------------------- */

/*
 * 100 000 round trips for M_SWITCH (the hand-off libgoro relies on);
 * M_UNPARK + M_PARK, two ioctls and a cross-CPU wake-up per hand-off,
 * costs up to 2 ms a round trip under TCG on a loaded host, so it does
 * 20 000.
 */
#define PINGPONG_ROUNDS		100000
#define PINGPONG_ROUNDS_SLOW	20000

/*
 * Two Ms hand a token back and forth.  seq is written only by the side
 * that holds the token: ping writes odd numbers, pong even ones, and
 * each checks on waking that the other side wrote exactly the next one.
 * A lost wake-up shows as -ETIMEDOUT (finite deadlines) or as the
 * watchdog's -EINTR (GORO_NO_DEADLINE), never as a hang.
 */
struct pp_side {
	struct pp_shared *sh;
	pid_t tid;
	uint32_t slot;
	int err;		/* first error: a ret other than 0 */
	long err_round;
	long bad_seq;		/* rounds that saw an unexpected seq */
	int reg_ret;
};

struct pp_shared {
	int fd;
	bool use_switch;
	bool no_deadline;
	long rounds;
	volatile uint64_t seq;
	volatile uint64_t progress;
	volatile int done;
	pthread_barrier_t registered;
	struct pp_side side[2];
};

FIXTURE(pingpong) {
	int fd;
	struct pp_shared sh;
};

FIXTURE_VARIANT(pingpong) {
	bool use_switch;	/* M_SWITCH, else M_UNPARK + M_PARK */
	bool no_deadline;	/* GORO_NO_DEADLINE plus a watchdog */
	long rounds;
};

FIXTURE_VARIANT_ADD(pingpong, switch_no_deadline) {
	.use_switch = true,
	.no_deadline = true,
	.rounds = PINGPONG_ROUNDS,
};

FIXTURE_VARIANT_ADD(pingpong, switch_deadline) {
	.use_switch = true,
	.no_deadline = false,
	.rounds = PINGPONG_ROUNDS,
};

FIXTURE_VARIANT_ADD(pingpong, unpark_park) {
	.use_switch = false,
	.no_deadline = true,
	.rounds = PINGPONG_ROUNDS_SLOW,
};

FIXTURE_SETUP(pingpong)
{
	self->fd = goro_open_or_skip();
}

FIXTURE_TEARDOWN(pingpong)
{
	close(self->fd);
}

static uint64_t pp_deadline(const struct pp_shared *sh)
{
	return sh->no_deadline ? GORO_NO_DEADLINE :
				 goro_now_ns() + 10 * NSEC_PER_SEC;
}

/* Hand the token to peer and wait for it to come back. */
static int pp_handoff(struct pp_shared *sh, uint32_t peer)
{
	int ret;

	if (sh->use_switch)
		return goro_switch(sh->fd, peer, pp_deadline(sh));
	ret = goro_unpark(sh->fd, peer);
	if (ret)
		return ret;
	return goro_park(sh->fd, pp_deadline(sh));
}

static void pp_fail(struct pp_side *me, int ret, long round)
{
	if (!me->err) {
		me->err = ret;
		me->err_round = round;
	}
}

/* side 0 starts ("ping", odd seq values), side 1 answers ("pong"). */
static void *pp_fn(void *arg)
{
	struct pp_side *me = arg;
	struct pp_shared *sh = me->sh;
	const int id = me == &sh->side[1];
	struct pp_side *peer = &sh->side[!id];
	int ret;

	me->tid = goro_gettid();
	me->reg_ret = goro_register(sh->fd, &me->slot);
	pthread_barrier_wait(&sh->registered);
	if (me->reg_ret || peer->reg_ret)
		return NULL;

	if (id == 1) {
		/* pong waits for the first ball */
		ret = goro_park(sh->fd, pp_deadline(sh));
		if (ret)
			pp_fail(me, ret, 0);
	}
	for (long i = 0; i < sh->rounds && !me->err && !peer->err; i++) {
		uint64_t want = 2 * i + (id ? 1 : 0);

		if (sh->seq != want)
			me->bad_seq++;
		sh->seq = want + 1;
		sh->progress++;
		if (id == 1 && i == sh->rounds - 1) {
			/* the last answer: wake ping, do not wait */
			ret = goro_unpark(sh->fd, peer->slot);
			if (ret)
				pp_fail(me, ret, i);
			break;
		}
		ret = pp_handoff(sh, peer->slot);
		if (ret) {
			pp_fail(me, ret, i);
			/* let the peer see the failure instead of waiting */
			goro_unpark(sh->fd, peer->slot);
		}
	}
	if (id == 0 && !me->err && sh->seq != 2 * (uint64_t)sh->rounds)
		me->bad_seq++;
	goro_unregister(sh->fd);
	return NULL;
}

TEST_F_TIMEOUT(pingpong, rounds, 600)
{
	struct pp_shared *sh = &self->sh;
	pthread_t th[2];
	uint64_t t0, t1, last = 0, stalled_since;
	bool watchdog_fired = false;

	ASSERT_EQ(0, install_sigusr1());
	sh->fd = self->fd;
	sh->use_switch = variant->use_switch;
	sh->no_deadline = variant->no_deadline;
	sh->rounds = variant->rounds;
	ASSERT_EQ(0, pthread_barrier_init(&sh->registered, NULL, 2));
	for (int i = 0; i < 2; i++) {
		sh->side[i].sh = sh;
		ASSERT_EQ(0, pthread_create(&th[i], NULL, pp_fn, &sh->side[i]));
	}

	/*
	 * The watchdog: no progress for 10 s means a lost wake-up; both
	 * sides get SIGUSR1 so their GORO_NO_DEADLINE waits return -EINTR,
	 * which they report as errors.
	 */
	t0 = goro_now_ns();
	stalled_since = t0;
	while (pthread_tryjoin_np(th[0], NULL) == EBUSY) {
		usleep(50000);
		if (sh->progress != last) {
			last = sh->progress;
			stalled_since = goro_now_ns();
		} else if (goro_now_ns() - stalled_since > 10 * NSEC_PER_SEC) {
			watchdog_fired = true;
			pthread_kill(th[0], SIGUSR1);
			pthread_kill(th[1], SIGUSR1);
			stalled_since = goro_now_ns();
		}
	}
	t1 = goro_now_ns();
	pthread_join(th[1], NULL);

	ASSERT_EQ(0, sh->side[0].reg_ret);
	ASSERT_EQ(0, sh->side[1].reg_ret);
	EXPECT_FALSE(watchdog_fired) TH_LOG("stalled at progress %llu",
					    (unsigned long long)sh->progress);
	for (int i = 0; i < 2; i++) {
		EXPECT_EQ(0, sh->side[i].err)
			TH_LOG("side %d: error %d in round %ld", i,
			       sh->side[i].err, sh->side[i].err_round);
		EXPECT_EQ(0, sh->side[i].bad_seq);
	}
	EXPECT_EQ(2 * (uint64_t)sh->rounds, sh->seq);
	TH_LOG("%ld round trips in %.2f s: %.1f us each", sh->rounds,
	       (t1 - t0) / 1e9, (t1 - t0) / 1e3 / sh->rounds);
}

TEST_HARNESS_MAIN
