// SPDX-License-Identifier: GPL-2.0
/*
 * note_test: NOTE_SLEEP, NOTE_WAKEUP and NOTE_CLEAR, Go's one-shot notes.
 *
 * What is proven here: each input word is validated alone (addr 0 and
 * every misalignment, flags, pad, each reserved word, a deadline on
 * WAKEUP or CLEAR); a woken note stays woken until CLEAR and a second
 * WAKEUP is -EBUSY; SLEEP honours its absolute deadline and signals;
 * WAKEUP wakes every sleeper at once, including one that a CLEAR
 * follows before it runs; notes need no M and belong to one instance;
 * the instance's note table is bounded by GORO_MAX_NOTES (-ENOSPC).
 */
#include "goro_test.h"

static const uint32_t bad_u32[] = { 1, 0x80000000u, ~0u };
static const uint64_t bad_u64[] = { 1, 1ULL << 63, ~0ULL };

static const unsigned long note_cmds[] = {
	GORO_IOC_NOTE_SLEEP, GORO_IOC_NOTE_WAKEUP, GORO_IOC_NOTE_CLEAR,
};

/* Note keys: real, 8-byte aligned addresses of this process. */
static uint64_t notes[64] __attribute__((aligned(64)));

FIXTURE(note) {
	int fd;
};

FIXTURE_SETUP(note)
{
	self->fd = goro_open_or_skip();
}

FIXTURE_TEARDOWN(note)
{
	close(self->fd);
}

static volatile sig_atomic_t got_signal;

static void on_sigusr1(int sig)
{
	(void)sig;
	got_signal++;
}

static int install_sigusr1(void)
{
	struct sigaction sa = { .sa_handler = on_sigusr1 };

	sigemptyset(&sa.sa_mask);
	return sigaction(SIGUSR1, &sa, NULL) ? -errno : 0;
}

/*
 * A well-formed note for cmd: SLEEP gets deadline 0 (already passed), so
 * that a valid call returns -ETIMEDOUT at once and -EINVAL can only come
 * from the one bad field under test.
 */
static void note_good(struct goro_note *n, const void *addr)
{
	memset(n, 0, sizeof(*n));
	n->addr = (uint64_t)(uintptr_t)addr;
}

TEST_F(note, bad_fields)
{
	struct goro_note n;

	for (unsigned int c = 0; c < ARRAY_SIZE(note_cmds); c++) {
		const unsigned long cmd = note_cmds[c];

		/* addr: zero, and every misalignment */
		note_good(&n, NULL);
		EXPECT_EQ(-EINVAL, goro_ioc(self->fd, cmd, &n));
		for (int off = 1; off < 8; off++) {
			note_good(&n, (char *)&notes[1] + off);
			EXPECT_EQ(-EINVAL, goro_ioc(self->fd, cmd, &n))
				TH_LOG("cmd %#lx addr +%d", cmd, off);
		}
		for (unsigned int v = 0; v < ARRAY_SIZE(bad_u32); v++) {
			note_good(&n, &notes[1]);
			n.flags = bad_u32[v];
			EXPECT_EQ(-EINVAL, goro_ioc(self->fd, cmd, &n));
			note_good(&n, &notes[1]);
			n.pad = bad_u32[v];
			EXPECT_EQ(-EINVAL, goro_ioc(self->fd, cmd, &n));
		}
		for (unsigned int r = 0; r < ARRAY_SIZE(n.reserved); r++) {
			for (unsigned int v = 0; v < ARRAY_SIZE(bad_u64); v++) {
				note_good(&n, &notes[1]);
				n.reserved[r] = bad_u64[v];
				EXPECT_EQ(-EINVAL, goro_ioc(self->fd, cmd, &n))
					TH_LOG("cmd %#lx reserved[%u]", cmd, r);
			}
		}
	}
	/* deadline_ns belongs to SLEEP only */
	for (unsigned int v = 0; v < ARRAY_SIZE(bad_u64); v++) {
		EXPECT_EQ(-EINVAL, goro_note_op(self->fd, GORO_IOC_NOTE_WAKEUP,
						&notes[1], bad_u64[v]));
		EXPECT_EQ(-EINVAL, goro_note_op(self->fd, GORO_IOC_NOTE_CLEAR,
						&notes[1], bad_u64[v]));
	}
	/* none of it woke the note: SLEEP with a passed deadline times out */
	EXPECT_EQ(-ETIMEDOUT, goro_note_sleep(self->fd, &notes[1], 0));
}

/* Keys are never dereferenced: any aligned non-zero value is a name. */
TEST_F(note, any_aligned_key)
{
	static const uint64_t keys[] = { 8, 0x1000, 1ULL << 47,
					 0xffffffff81000000ULL, ~7ULL };

	for (unsigned int i = 0; i < ARRAY_SIZE(keys); i++) {
		const void *k = (const void *)(uintptr_t)keys[i];

		EXPECT_EQ(0, goro_note_wakeup(self->fd, k));
		EXPECT_EQ(0, goro_note_sleep(self->fd, k,
					  GORO_NO_DEADLINE));
		EXPECT_EQ(0, goro_note_clear(self->fd, k));
	}
}

TEST_F(note, wakeup_before_sleep)
{
	uint64_t t0;

	ASSERT_EQ(0, goro_note_wakeup(self->fd, &notes[0]));
	t0 = goro_now_ns();
	EXPECT_EQ(0, goro_note_sleep(self->fd, &notes[0],
				  t0 + 10 * NSEC_PER_SEC));
	/* still woken: a note is one-shot until CLEAR, not a token */
	EXPECT_EQ(0, goro_note_sleep(self->fd, &notes[0],
				  GORO_NO_DEADLINE));
	EXPECT_GT(t0 + 2 * NSEC_PER_SEC, goro_now_ns());
	/* other notes are not woken */
	EXPECT_EQ(-ETIMEDOUT, goro_note_sleep(self->fd, &notes[1], 0));
}

TEST_F(note, double_wakeup)
{
	EXPECT_EQ(0, goro_note_wakeup(self->fd, &notes[0]));
	EXPECT_EQ(-EBUSY, goro_note_wakeup(self->fd, &notes[0]));
	EXPECT_EQ(0, goro_note_clear(self->fd, &notes[0]));
	EXPECT_EQ(0, goro_note_wakeup(self->fd, &notes[0]));
}

TEST_F(note, clear_then_sleep_times_out)
{
	uint64_t deadline;

	ASSERT_EQ(0, goro_note_wakeup(self->fd, &notes[0]));
	ASSERT_EQ(0, goro_note_clear(self->fd, &notes[0]));
	/* CLEAR twice, and CLEAR of a note never used: both fine */
	EXPECT_EQ(0, goro_note_clear(self->fd, &notes[0]));
	EXPECT_EQ(0, goro_note_clear(self->fd, &notes[2]));
	deadline = goro_now_ns() + 20 * NSEC_PER_MSEC;
	EXPECT_EQ(-ETIMEDOUT, goro_note_sleep(self->fd, &notes[0], deadline));
	EXPECT_LE(deadline, goro_now_ns());
}

TEST_F(note, timeouts)
{
	uint64_t t0, deadline, t1;

	t0 = goro_now_ns();
	EXPECT_EQ(-ETIMEDOUT, goro_note_sleep(self->fd, &notes[0], 0));
	EXPECT_EQ(-ETIMEDOUT, goro_note_sleep(self->fd, &notes[0], t0 - 1));
	EXPECT_GT(t0 + NSEC_PER_SEC, goro_now_ns());

	t0 = goro_now_ns();
	deadline = t0 + 10 * NSEC_PER_MSEC;
	EXPECT_EQ(-ETIMEDOUT, goro_note_sleep(self->fd, &notes[0], deadline));
	t1 = goro_now_ns();
	EXPECT_LE(deadline, t1);
	EXPECT_GT(t0 + 5 * NSEC_PER_SEC, t1);
	TH_LOG("10 ms note sleep took %llu us",
	       (unsigned long long)(t1 - t0) / 1000);
}

/* ---- sleepers on other threads ------------------------------------------- */

struct sleeper {
	int fd;
	const void *addr;
	uint64_t deadline;
	pid_t tid;
	int ret[2];
	bool restart;
	pthread_barrier_t *started;
	pthread_barrier_t *go_on;
};

static void *sleeper_fn(void *arg)
{
	struct sleeper *s = arg;

	s->tid = goro_gettid();
	pthread_barrier_wait(s->started);
	s->ret[0] = goro_note_sleep(s->fd, s->addr,
				 s->deadline);
	if (s->restart) {
		pthread_barrier_wait(s->go_on);
		s->ret[1] = goro_note_sleep(s->fd, s->addr,
					 s->deadline);
	}
	return NULL;
}

static int start_sleepers(struct sleeper *s, pthread_t *th, int n, int fd,
			  const void *addr, uint64_t deadline,
			  pthread_barrier_t *started, pthread_barrier_t *go_on)
{
	for (int i = 0; i < n; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		s[i].fd = fd;
		s[i].addr = addr;
		s[i].deadline = deadline;
		s[i].ret[0] = s[i].ret[1] = 1;
		s[i].restart = go_on != NULL;
		s[i].started = started;
		s[i].go_on = go_on;
		if (pthread_create(&th[i], NULL, sleeper_fn, &s[i]))
			return -1;
	}
	pthread_barrier_wait(started);
	return 0;
}

TEST_F(note, wakeup_across_threads)
{
	pthread_barrier_t started;
	struct sleeper s;
	pthread_t th;

	pthread_barrier_init(&started, NULL, 2);
	ASSERT_EQ(0, start_sleepers(&s, &th, 1, self->fd, &notes[3],
				    goro_now_ns() + 20 * NSEC_PER_SEC,
				    &started, NULL));
	ASSERT_TRUE(goro_wait_in_ioctl(getpid(), s.tid, 10000));
	EXPECT_EQ(1, s.ret[0]);
	EXPECT_EQ(0, goro_note_wakeup(self->fd, &notes[3]));
	pthread_join(th, NULL);
	EXPECT_EQ(0, s.ret[0]);
}

#define MANY_SLEEPERS	32

TEST_F(note, many_sleepers_all_woken)
{
	struct sleeper s[MANY_SLEEPERS];
	pthread_t th[MANY_SLEEPERS];
	pthread_barrier_t started;
	uint64_t deadline = goro_now_ns() + 30 * NSEC_PER_SEC;

	pthread_barrier_init(&started, NULL, MANY_SLEEPERS + 1);
	ASSERT_EQ(0, start_sleepers(s, th, MANY_SLEEPERS, self->fd, &notes[4],
				    deadline, &started, NULL));
	for (int i = 0; i < MANY_SLEEPERS; i++)
		ASSERT_TRUE(goro_wait_in_ioctl(getpid(), s[i].tid, 10000));
	EXPECT_EQ(0, goro_note_wakeup(self->fd, &notes[4]));
	for (int i = 0; i < MANY_SLEEPERS; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, s[i].ret[0]) TH_LOG("sleeper %d", i);
	}
	EXPECT_GT(deadline, goro_now_ns());
}

/*
 * WAKEUP then CLEAR at once, before the sleepers had a chance to run:
 * the wake-up they slept through is not lost.
 */
TEST_F(note, wakeup_then_clear_not_lost)
{
	struct sleeper s[4];
	pthread_t th[4];
	pthread_barrier_t started;

	pthread_barrier_init(&started, NULL, 4 + 1);
	ASSERT_EQ(0, start_sleepers(s, th, 4, self->fd, &notes[5],
				    goro_now_ns() + 20 * NSEC_PER_SEC,
				    &started, NULL));
	for (int i = 0; i < 4; i++)
		ASSERT_TRUE(goro_wait_in_ioctl(getpid(), s[i].tid, 10000));
	EXPECT_EQ(0, goro_note_wakeup(self->fd, &notes[5]));
	EXPECT_EQ(0, goro_note_clear(self->fd, &notes[5]));
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, s[i].ret[0]) TH_LOG("sleeper %d", i);
	}
	/* and the note is unwoken again */
	EXPECT_EQ(-ETIMEDOUT, goro_note_sleep(self->fd, &notes[5], 0));
}

TEST_F(note, signal_interrupts_then_restart)
{
	pthread_barrier_t started, go_on;
	struct sleeper s;
	pthread_t th;

	ASSERT_EQ(0, install_sigusr1());
	pthread_barrier_init(&started, NULL, 2);
	pthread_barrier_init(&go_on, NULL, 2);
	ASSERT_EQ(0, start_sleepers(&s, &th, 1, self->fd, &notes[6],
				    goro_now_ns() + 20 * NSEC_PER_SEC,
				    &started, &go_on));
	ASSERT_TRUE(goro_wait_in_ioctl(getpid(), s.tid, 10000));
	ASSERT_EQ(0, pthread_kill(th, SIGUSR1));
	pthread_barrier_wait(&go_on);
	EXPECT_EQ(-EINTR, s.ret[0]);
	EXPECT_EQ(1, got_signal);
	ASSERT_TRUE(goro_wait_in_ioctl(getpid(), s.tid, 10000));
	EXPECT_EQ(0, goro_note_wakeup(self->fd, &notes[6]));
	pthread_join(th, NULL);
	EXPECT_EQ(0, s.ret[1]);
}

/* Notes need no M: a registered and an unregistered thread behave alike. */
TEST_F(note, registered_thread)
{
	ASSERT_EQ(0, goro_register(self->fd, NULL));
	EXPECT_EQ(0, goro_note_wakeup(self->fd, &notes[7]));
	EXPECT_EQ(0, goro_note_sleep(self->fd, &notes[7], 0));
	/* and a note wake-up is not an M unpark */
	EXPECT_EQ(-ETIMEDOUT, goro_park(self->fd, 0));
	EXPECT_EQ(0, goro_unregister(self->fd));
}

/* Two opens of /dev/goro in one process are two instances: no sharing. */
TEST_F(note, instances_do_not_share_notes)
{
	int fd2 = open(GORO_DEV, O_RDWR | O_CLOEXEC);

	ASSERT_LE(0, fd2);
	EXPECT_EQ(0, goro_note_wakeup(self->fd, &notes[8]));
	EXPECT_EQ(-ETIMEDOUT, goro_note_sleep(fd2, &notes[8], 0));
	EXPECT_EQ(0, goro_note_wakeup(fd2, &notes[8]));
	EXPECT_EQ(-EBUSY, goro_note_wakeup(self->fd, &notes[8]));
	close(fd2);
}

/*
 * GORO_MAX_NOTES woken notes fill the table; one more is -ENOSPC, and
 * a CLEAR (which frees a note without sleepers) makes room again.
 */
TEST_F_TIMEOUT(note, enospc, 300)
{
	const size_t n = GORO_MAX_NOTES;
	uint64_t *keys;
	size_t i;

	keys = calloc(n + 1, sizeof(*keys));
	ASSERT_NE(NULL, keys);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, goro_note_wakeup(self->fd, &keys[i]))
			TH_LOG("note %zu of %zu", i, n);
	}
	EXPECT_EQ(-ENOSPC, goro_note_wakeup(self->fd, &keys[n]));
	/* a sleep on a new note needs state too */
	EXPECT_EQ(-ENOSPC, goro_note_sleep(self->fd, &keys[n], 0));
	/* existing notes still work */
	EXPECT_EQ(0, goro_note_sleep(self->fd, &keys[0], 0));
	EXPECT_EQ(-EBUSY, goro_note_wakeup(self->fd, &keys[0]));

	EXPECT_EQ(0, goro_note_clear(self->fd, &keys[0]));
	EXPECT_EQ(0, goro_note_wakeup(self->fd, &keys[n]));
	EXPECT_EQ(-ENOSPC, goro_note_wakeup(self->fd, &keys[0]));

	for (i = 0; i <= n; i++)
		ASSERT_EQ(0, goro_note_clear(self->fd, &keys[i]));
	/* all state gone: a sleep with a passed deadline creates and frees */
	for (i = 0; i < 1000; i++)
		ASSERT_EQ(-ETIMEDOUT, goro_note_sleep(self->fd, &keys[i], 0));
	EXPECT_EQ(0, goro_note_wakeup(self->fd, &keys[1]));
	free(keys);
}

TEST_HARNESS_MAIN
