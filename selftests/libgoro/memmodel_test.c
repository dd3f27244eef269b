// SPDX-License-Identifier: MIT
/*
 * memmodel_test: the happens-before edges of Go's memory model
 * (go.dev/ref/mem) that goro's channels, select, mutexes, once,
 * waitgroups, cond and goroutine creation give.  Every test publishes
 * plain (non-atomic) data through one edge only, on two Ps, many rounds:
 * the values are asserted here, and the TSan build (tsan/memmodel_test)
 * reports a data race - failing the test - if an edge is missing.
 */
#include "kselftest_harness.h"
#include "sched_test.h"

#define ROUNDS	(TSAN ? 200 : 5000)

struct payload {
	long a, b, c;
};

static void fill(struct payload *p, long v)
{
	p->a = v;
	p->b = v * 3;
	p->c = v * 7;
}

static bool holds(const struct payload *p, long v)
{
	return p->a == v && p->b == v * 3 && p->c == v * 7;
}

static long bad;		/* rounds that saw stale data */
static struct goro_waitgroup done;

static void run(void (*main_fn)(void *))
{
	bad = 0;
	memset(&done, 0, sizeof(done));
	if (goro_main(main_fn, NULL))
		abort();
}

/* "A send on a channel is synchronized before the completion of the
 * corresponding receive", buffered and unbuffered, and through select. */
static struct payload box[ROUNDS];
static struct goro_chan *ch;

static void sender(void *arg)
{
	bool sel = arg != NULL;

	for (long i = 0; i < ROUNDS; i++) {
		fill(&box[i], i + 1);
		if (sel) {
			struct goro_select_case c = {
				.ch = ch, .val = &i, .dir = GORO_SELECT_SEND
			};
			goro_select(&c, 1, 0);
		} else {
			goro_chan_send(ch, &i);
		}
	}
	goro_waitgroup_done(&done);
}

static void send_recv_main(void *arg)
{
	long i;

	goro_set_maxprocs(2);
	for (int kind = 0; kind < 3; kind++) {
		ch = goro_chan_make(sizeof(long), kind == 1 ? 16 : 0);
		goro_waitgroup_add(&done, 1);
		go(sender, kind == 2 ? (void *)1 : NULL);
		for (long k = 0; k < ROUNDS; k++) {
			goro_chan_recv(ch, &i);
			if (!holds(&box[i], i + 1))
				bad++;
		}
		goro_waitgroup_wait(&done);
		goro_chan_free(ch);
	}
	(void)arg;
}

TEST(send_before_receive)
{
	run(send_recv_main);
	ASSERT_EQ(0, bad);
}

/* "The closing of a channel is synchronized before a receive that
 * returns because the channel is closed." */
static struct payload closed_box;

static void closer(void *arg)
{
	fill(&closed_box, (long)arg);
	goro_chan_close(ch);
}

static void close_main(void *arg)
{
	(void)arg;
	for (long r = 1; r <= ROUNDS / 10; r++) {
		ch = goro_chan_make(sizeof(long), r & 1);
		go(closer, (void *)r);
		if (goro_chan_recv(ch, NULL) || !holds(&closed_box, r))
			bad++;
		goro_chan_free(ch);
	}
}

TEST(close_before_receive_of_zero)
{
	run(close_main);
	ASSERT_EQ(0, bad);
}

/* "A receive from an unbuffered channel is synchronized before the
 * completion of the corresponding send on that channel." */
static struct payload rbox;
static struct goro_chan *ack;

static void receiver(void *arg)
{
	(void)arg;
	for (long i = 1; i <= ROUNDS; i++) {
		fill(&rbox, i);
		goro_chan_recv(ch, NULL);
		goro_chan_recv(ack, NULL);	/* the sender has read rbox */
	}
}

static void recv_send_main(void *arg)
{
	long zero = 0;

	(void)arg;
	goro_set_maxprocs(2);
	ch = goro_chan_make(sizeof(long), 0);
	ack = goro_chan_make(sizeof(long), 0);
	go(receiver, NULL);
	for (long i = 1; i <= ROUNDS; i++) {
		goro_chan_send(ch, &i);
		/* the receiver filled rbox before its receive */
		if (!holds(&rbox, i))
			bad++;
		goro_chan_send(ack, &zero);
	}
	goro_chan_free(ack);
	goro_chan_free(ch);
}

TEST(unbuffered_receive_before_send_completes)
{
	run(recv_send_main);
	ASSERT_EQ(0, bad);
}

/* "The kth receive on a channel with capacity C is synchronized before
 * the completion of the k+Cth send": a counting semaphore guarding a
 * plain counter. */
#define SEM_C		2
#define SEM_WORKERS	6
static long guarded[SEM_C];
static struct goro_chan *sem;

static void sem_worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS / 10; i++) {
		long slot;

		goro_chan_send(sem, NULL);	/* acquire */
		/* with C slots, a token chooses one plainly-owned slot */
		goro_chan_recv(ch, &slot);
		guarded[slot]++;
		goro_chan_send(ch, &slot);
		goro_chan_recv(sem, NULL);	/* release */
	}
	goro_waitgroup_done(&done);
}

static void sem_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(2);
	sem = goro_chan_make(0, SEM_C);
	ch = goro_chan_make(sizeof(long), SEM_C);
	for (long s = 0; s < SEM_C; s++)
		goro_chan_send(ch, &s);
	goro_waitgroup_add(&done, SEM_WORKERS);
	for (int i = 0; i < SEM_WORKERS; i++)
		go(sem_worker, NULL);
	goro_waitgroup_wait(&done);
	if (guarded[0] + guarded[1] != SEM_WORKERS * (ROUNDS / 10))
		bad++;
	goro_chan_free(ch);
	goro_chan_free(sem);
}

TEST(buffered_channel_as_semaphore)
{
	run(sem_main);
	ASSERT_EQ(0, bad);
}

/* "For any sync.Mutex l and n < m, call n of l.Unlock() is synchronized
 * before call m of l.Lock() returns"; RWMutex likewise for readers. */
static struct goro_mutex mu;
static struct goro_rwmutex rw;
static long plain_counter;
static struct payload rw_box;

static void mutex_worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		goro_mutex_lock(&mu);
		plain_counter++;
		goro_mutex_unlock(&mu);
	}
	goro_waitgroup_done(&done);
}

static void rw_writer(void *arg)
{
	(void)arg;
	for (long i = 1; i <= ROUNDS / 10; i++) {
		goro_rwmutex_lock(&rw);
		fill(&rw_box, i);
		goro_rwmutex_unlock(&rw);
		goro_yield();
	}
	goro_waitgroup_done(&done);
}

static void rw_reader(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS / 10; i++) {
		goro_rwmutex_rlock(&rw);
		if (!holds(&rw_box, rw_box.a))
			__atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
		goro_rwmutex_runlock(&rw);
	}
	goro_waitgroup_done(&done);
}

static void mutex_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(2);
	goro_waitgroup_add(&done, 4);
	for (int i = 0; i < 4; i++)
		go(mutex_worker, NULL);
	goro_waitgroup_wait(&done);
	if (plain_counter != 4L * ROUNDS)
		bad++;
	goro_waitgroup_add(&done, 4);
	go(rw_writer, NULL);
	for (int i = 0; i < 3; i++)
		go(rw_reader, NULL);
	goro_waitgroup_wait(&done);
}

TEST(mutex_and_rwmutex)
{
	run(mutex_main);
	ASSERT_EQ(0, bad);
}

/* "The completion of a single call of f() from once.Do(f) is
 * synchronized before the return of any call of once.Do(f)." */
static struct goro_once once;
static struct payload once_box;

static void init_once(void *arg)
{
	fill(&once_box, (long)arg);
}

static void once_worker(void *arg)
{
	goro_once_do(&once, init_once, arg);
	if (!holds(&once_box, 99))
		__atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
	goro_waitgroup_done(&done);
}

static void once_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(2);
	goro_waitgroup_add(&done, 16);
	for (int i = 0; i < 16; i++)
		go(once_worker, (void *)99L);
	goro_waitgroup_wait(&done);
}

TEST(once_completion_before_return)
{
	run(once_main);
	ASSERT_EQ(0, bad);
}

/* WaitGroup: each Done is synchronized before Wait returns; cond: the
 * mutex carries the edge from the signaller's writes to the waiter. */
static struct payload wg_box[8];
static struct goro_cond cond;
static struct payload cond_box;
static int cond_ready;

static void wg_worker(void *arg)
{
	fill(&wg_box[(long)arg], (long)arg + 5);
	goro_waitgroup_done(&done);
}

static void cond_signaller(void *arg)
{
	(void)arg;
	goro_mutex_lock(&mu);
	fill(&cond_box, 17);
	cond_ready = 1;
	goro_cond_signal(&cond);
	goro_mutex_unlock(&mu);
}

static void wg_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(2);
	for (int r = 0; r < ROUNDS / 100; r++) {
		goro_waitgroup_add(&done, 8);
		for (long i = 0; i < 8; i++)
			go(wg_worker, (void *)i);
		goro_waitgroup_wait(&done);
		for (long i = 0; i < 8; i++)
			if (!holds(&wg_box[i], i + 5))
				bad++;
		memset(wg_box, 0, sizeof(wg_box));
	}
	goro_cond_init(&cond, &mu);
	goro_mutex_lock(&mu);
	go(cond_signaller, NULL);
	while (!cond_ready)
		goro_cond_wait(&cond);
	if (!holds(&cond_box, 17))
		bad++;
	goro_mutex_unlock(&mu);
}

TEST(waitgroup_and_cond)
{
	run(wg_main);
	ASSERT_EQ(0, bad);
}

/* "The go statement that starts a new goroutine is synchronized before
 * the start of the goroutine's execution." */
static struct payload spawn_box[64];

static void spawned(void *arg)
{
	long i = (long)arg;

	if (!holds(&spawn_box[i], i + 1))
		__atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
	goro_waitgroup_done(&done);
}

static void spawn_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(2);
	goro_waitgroup_add(&done, 64);
	for (long i = 0; i < 64; i++) {
		fill(&spawn_box[i], i + 1);
		go(spawned, (void *)i);
	}
	goro_waitgroup_wait(&done);
}

TEST(go_statement_before_start)
{
	run(spawn_main);
	ASSERT_EQ(0, bad);
}

TEST_HARNESS_MAIN
