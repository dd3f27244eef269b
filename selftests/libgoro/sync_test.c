// SPDX-License-Identifier: MIT
/*
 * sync_test: goro_sema, goro_mutex (normal and starvation mode),
 * goro_rwmutex, goro_waitgroup, goro_once and goro_cond under contention
 * on every P, with checksums that a lost update or a doubled critical
 * section would break, and the misuse messages (each in a child: exit
 * status 2 and Go's text on stderr).  Iterations shrink under ASan and
 * TSan (SANITIZED, from sched_test.h) so the suite stays quick there.
 */
#include "kselftest_harness.h"
#include "sched_test.h"

#include "chan.h"

#define SCALE(n)	(SANITIZED ? (n) / 10 : (n))

/* ---------------------------------------------------------------------
 * Semaphores
 * ------------------------------------------------------------------- */

static uint32_t sem;
static struct goro_waitgroup sem_wg;
static long sem_inside, sem_max_inside, sem_total;
static struct goro_mutex sem_mu;

static void sem_worker(void *arg)
{
	long iters = (long)arg;

	for (long i = 0; i < iters; i++) {
		goro_sema_acquire(&sem);
		long in = __atomic_add_fetch(&sem_inside, 1, __ATOMIC_SEQ_CST);

		goro_mutex_lock(&sem_mu);
		if (in > sem_max_inside)
			sem_max_inside = in;
		sem_total++;
		goro_mutex_unlock(&sem_mu);
		if (i % 7 == 0)
			goro_yield();
		__atomic_sub_fetch(&sem_inside, 1, __ATOMIC_SEQ_CST);
		goro_sema_release(&sem, i & 1);
	}
	goro_waitgroup_done(&sem_wg);
}

#define SEM_UNITS	3
#define SEM_WORKERS	16

static void sem_main(void *arg)
{
	long iters = SCALE(20000);

	(void)arg;
	for (int i = 0; i < SEM_UNITS; i++)
		goro_sema_release(&sem, false);
	goro_waitgroup_add(&sem_wg, SEM_WORKERS);
	for (int i = 0; i < SEM_WORKERS; i++)
		go(sem_worker, (void *)iters);
	goro_waitgroup_wait(&sem_wg);
}

TEST(sema_counts_units)
{
	ASSERT_EQ(0, goro_main(sem_main, NULL));
	ASSERT_EQ(SEM_WORKERS * SCALE(20000), sem_total);
	ASSERT_LE(sem_max_inside, SEM_UNITS);
	ASSERT_GE(sem_max_inside, 1);
	ASSERT_EQ(SEM_UNITS, sem);
}

/* Waiters on one semaphore are served in arrival order. */
#define FIFO_N	10
static uint32_t fifo_sem;
static int fifo_order[FIFO_N], fifo_pos;
static struct goro_waitgroup fifo_wg;

static void fifo_waiter(void *arg)
{
	goro_sema_acquire(&fifo_sem);
	fifo_order[fifo_pos++] = (int)(long)arg;
	goro_waitgroup_done(&fifo_wg);
}

static void fifo_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(1);	/* arrival order = spawn order */
	goro_waitgroup_add(&fifo_wg, FIFO_N);
	for (long i = 0; i < FIFO_N; i++) {
		go(fifo_waiter, (void *)i);
		goro_yield();	/* let it queue */
	}
	/*
	 * One at a time: goready puts each woken waiter in runnext, where
	 * the next one would displace it to the run queue's tail.
	 */
	for (int i = 0; i < FIFO_N; i++) {
		goro_sema_release(&fifo_sem, false);
		goro_yield();
	}
	goro_waitgroup_wait(&fifo_wg);
}

TEST(sema_fifo)
{
	ASSERT_EQ(0, goro_main(fifo_main, NULL));
	ASSERT_EQ(FIFO_N, fifo_pos);
	for (int i = 0; i < FIFO_N; i++)
		ASSERT_EQ(i, fifo_order[i]);
}

/* ---------------------------------------------------------------------
 * Mutex
 * ------------------------------------------------------------------- */

static struct goro_mutex mu;
static long mu_a, mu_b;		/* b == a*(a+1)/2 while unlocked */
static struct goro_waitgroup mu_wg;
static int mu_bad;

static void mutex_worker(void *arg)
{
	long iters = (long)arg;

	for (long i = 0; i < iters; i++) {
		goro_mutex_lock(&mu);
		if (mu_b != mu_a * (mu_a + 1) / 2)
			mu_bad = 1;
		mu_a++;
		mu_b += mu_a;
		goro_mutex_unlock(&mu);
		if (i % 1000 == 0)
			goro_yield();
	}
	goro_waitgroup_done(&mu_wg);
}

#define MU_WORKERS	8

static void mutex_main(void *arg)
{
	(void)arg;
	goro_waitgroup_add(&mu_wg, MU_WORKERS);
	for (int i = 0; i < MU_WORKERS; i++)
		go(mutex_worker, (void *)SCALE(100000L));
	goro_waitgroup_wait(&mu_wg);
}

TEST(mutex_contention)
{
	long n = MU_WORKERS * SCALE(100000L);

	ASSERT_EQ(0, goro_main(mutex_main, NULL));
	ASSERT_EQ(0, mu_bad);
	ASSERT_EQ(n, mu_a);
	ASSERT_EQ(n * (n + 1) / 2, mu_b);
	ASSERT_EQ(0, mu.state);
}

static int try_results[4];

static void trylock_main(void *arg)
{
	struct goro_mutex m = { 0 };

	(void)arg;
	try_results[0] = goro_mutex_trylock(&m);
	try_results[1] = goro_mutex_trylock(&m);
	goro_mutex_unlock(&m);
	try_results[2] = goro_mutex_trylock(&m);
	goro_mutex_unlock(&m);
	try_results[3] = m.state;
}

TEST(mutex_trylock)
{
	ASSERT_EQ(0, goro_main(trylock_main, NULL));
	ASSERT_EQ(1, try_results[0]);
	ASSERT_EQ(0, try_results[1]);
	ASSERT_EQ(1, try_results[2]);
	ASSERT_EQ(0, try_results[3]);
}

/*
 * Starvation: a greedy goroutine holds the mutex for 2 ms at a time and
 * takes it again at once after unlocking, so a woken waiter always loses
 * the race in normal mode.  After 1 ms of waiting it must switch the
 * mutex to starvation mode, be handed the lock, and get in.  One P makes
 * the interleaving deterministic: the greedy one yields right after it
 * re-took the lock, so the waiter runs only to find it held.
 */
static struct goro_mutex st_mu;
static int st_saw_starving, st_victim_got;
static int st_rounds;

static void spin_ns(int64_t ns)
{
	int64_t end = goro_nanotime() + ns;

	while (goro_nanotime() < end)
		;
}

static void st_victim(void *arg)
{
	(void)arg;
	goro_mutex_lock(&st_mu);
	__atomic_store_n(&st_victim_got, 1, __ATOMIC_SEQ_CST);
	goro_mutex_unlock(&st_mu);
}

static void st_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(1);
	goro_mutex_lock(&st_mu);
	go(st_victim, NULL);
	for (st_rounds = 0; st_rounds < 200; st_rounds++) {
		spin_ns(2000000);
		if (__atomic_load_n(&st_mu.state, __ATOMIC_SEQ_CST) &
		    MUTEX_STARVING)
			st_saw_starving = 1;
		goro_mutex_unlock(&st_mu);
		goro_mutex_lock(&st_mu);
		if (__atomic_load_n(&st_victim_got, __ATOMIC_SEQ_CST))
			break;
		goro_yield();
	}
	goro_mutex_unlock(&st_mu);
}

TEST(mutex_starvation_mode)
{
	ASSERT_EQ(0, goro_main(st_main, NULL));
	ASSERT_EQ(1, st_saw_starving);
	ASSERT_EQ(1, st_victim_got);
	ASSERT_LT(st_rounds, 200);
	ASSERT_EQ(0, st_mu.state);
}

static void unlock_unlocked_main(void *arg)
{
	struct goro_mutex m = { 0 };

	(void)arg;
	goro_mutex_unlock(&m);
}

static void unlock_unlocked_child(void)
{
	goro_main(unlock_unlocked_main, NULL);
}

TEST(mutex_unlock_of_unlocked)
{
	char buf[8192];
	int st = run_child(unlock_unlocked_child, NULL, buf, sizeof(buf));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(buf, "fatal error: sync: unlock of unlocked mutex"));
}

/* ---------------------------------------------------------------------
 * RWMutex
 * ------------------------------------------------------------------- */

static struct goro_rwmutex rw;
static long rw_x, rw_y;			/* equal whenever no writer is inside */
static long rw_reads, rw_readers_inside, rw_max_readers;
static int rw_bad;
static struct goro_waitgroup rw_wg;

static void rw_reader(void *arg)
{
	long iters = (long)arg;

	for (long i = 0; i < iters; i++) {
		goro_rwmutex_rlock(&rw);
		long in = __atomic_add_fetch(&rw_readers_inside, 1,
					     __ATOMIC_SEQ_CST);
		long mx = __atomic_load_n(&rw_max_readers, __ATOMIC_RELAXED);

		while (in > mx &&
		       !__atomic_compare_exchange_n(&rw_max_readers, &mx, in,
						    false, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED))
			;
		if (rw_x != rw_y)
			__atomic_store_n(&rw_bad, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&rw_reads, 1, __ATOMIC_RELAXED);
		if (i % 50 == 0)
			goro_yield();	/* let readers overlap */
		__atomic_sub_fetch(&rw_readers_inside, 1, __ATOMIC_SEQ_CST);
		goro_rwmutex_runlock(&rw);
	}
	goro_waitgroup_done(&rw_wg);
}

static void rw_writer(void *arg)
{
	long iters = (long)arg;

	for (long i = 0; i < iters; i++) {
		goro_rwmutex_lock(&rw);
		if (__atomic_load_n(&rw_readers_inside, __ATOMIC_SEQ_CST))
			rw_bad = 1;
		rw_x++;
		if (i % 16 == 0)
			goro_yield();	/* readers must stay out meanwhile */
		rw_y++;
		goro_rwmutex_unlock(&rw);
	}
	goro_waitgroup_done(&rw_wg);
}

#define RW_READERS	8
#define RW_WRITERS	3

static int rw_shared;

static void rw_second_reader(void *arg)
{
	(void)arg;
	goro_rwmutex_rlock(&rw);
	__atomic_store_n(&rw_shared, 1, __ATOMIC_SEQ_CST);
	goro_rwmutex_runlock(&rw);
}

static void rw_main(void *arg)
{
	(void)arg;
	/* a second reader gets in while the first holds it */
	goro_rwmutex_rlock(&rw);
	go(rw_second_reader, NULL);
	for (int i = 0; i < 100000 && !__atomic_load_n(&rw_shared,
						       __ATOMIC_SEQ_CST); i++)
		goro_yield();
	goro_rwmutex_runlock(&rw);

	goro_waitgroup_add(&rw_wg, RW_READERS + RW_WRITERS);
	for (int i = 0; i < RW_READERS; i++)
		go(rw_reader, (void *)SCALE(20000L));
	for (int i = 0; i < RW_WRITERS; i++)
		go(rw_writer, (void *)SCALE(5000L));
	goro_waitgroup_wait(&rw_wg);
}

TEST(rwmutex_contention)
{
	ASSERT_EQ(0, goro_main(rw_main, NULL));
	ASSERT_EQ(0, rw_bad);
	ASSERT_EQ(RW_WRITERS * SCALE(5000L), rw_x);
	ASSERT_EQ(rw_x, rw_y);
	ASSERT_EQ(RW_READERS * SCALE(20000L), rw_reads);
	ASSERT_EQ(1, rw_shared);	/* readers do share it */
	ASSERT_LE(rw_max_readers, RW_READERS);
	ASSERT_EQ(0, rw.reader_count);
	ASSERT_EQ(0, rw.reader_wait);
	ASSERT_EQ(0, rw.w.state);
}

static void runlock_unlocked_main(void *arg)
{
	struct goro_rwmutex m = { 0 };

	(void)arg;
	goro_rwmutex_runlock(&m);
}

static void runlock_unlocked_child(void)
{
	goro_main(runlock_unlocked_main, NULL);
}

static void wunlock_unlocked_main(void *arg)
{
	struct goro_rwmutex m = { 0 };

	(void)arg;
	goro_rwmutex_rlock(&m);
	goro_rwmutex_unlock(&m);
}

static void wunlock_unlocked_child(void)
{
	goro_main(wunlock_unlocked_main, NULL);
}

TEST(rwmutex_misuse)
{
	char buf[8192];
	int st;

	st = run_child(runlock_unlocked_child, NULL, buf, sizeof(buf));
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(buf, "fatal error: sync: RUnlock of unlocked RWMutex"));

	st = run_child(wunlock_unlocked_child, NULL, buf, sizeof(buf));
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(buf, "fatal error: sync: Unlock of unlocked RWMutex"));
}

/* ---------------------------------------------------------------------
 * WaitGroup
 * ------------------------------------------------------------------- */

static struct goro_waitgroup wg_work, wg_waiters;
static long wg_sum;
static int wg_waiter_saw[4];

static void wg_adder(void *arg)
{
	__atomic_add_fetch(&wg_sum, (long)arg, __ATOMIC_SEQ_CST);
	goro_waitgroup_done(&wg_work);
}

static void wg_waiter(void *arg)
{
	goro_waitgroup_wait(&wg_work);
	/* every Done happened before Wait returned */
	wg_waiter_saw[(long)arg] = __atomic_load_n(&wg_sum, __ATOMIC_SEQ_CST) ==
				   1000L * 1001 / 2;
	goro_waitgroup_done(&wg_waiters);
}

static void wg_main(void *arg)
{
	(void)arg;
	goro_waitgroup_add(&wg_work, 1000);
	goro_waitgroup_add(&wg_waiters, 4);
	for (long i = 0; i < 4; i++)
		go(wg_waiter, (void *)i);
	goro_yield();
	for (long i = 1; i <= 1000; i++)
		go(wg_adder, (void *)i);
	goro_waitgroup_wait(&wg_waiters);
	/* reusable once every Wait returned */
	goro_waitgroup_add(&wg_work, 1);
	goro_waitgroup_done(&wg_work);
	goro_waitgroup_wait(&wg_work);
}

TEST(waitgroup_many_waiters)
{
	ASSERT_EQ(0, goro_main(wg_main, NULL));
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(1, wg_waiter_saw[i]);
	ASSERT_EQ(0, wg_work.state);
	ASSERT_EQ(0, wg_waiters.state);
}

static void wg_negative_main(void *arg)
{
	struct goro_waitgroup wg = { 0 };

	(void)arg;
	goro_waitgroup_add(&wg, 1);
	goro_waitgroup_done(&wg);
	goro_waitgroup_done(&wg);
}

static void wg_negative_child(void)
{
	goro_main(wg_negative_main, NULL);
}

static struct goro_waitgroup reuse_wg;

static void reuse_waiter(void *arg)
{
	(void)arg;
	goro_waitgroup_wait(&reuse_wg);
}

static void wg_reuse_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(1);
	goro_waitgroup_add(&reuse_wg, 1);
	go(reuse_waiter, NULL);
	goro_yield();		/* the waiter blocks in Wait */
	goro_waitgroup_done(&reuse_wg);	/* readies it (runnext) */
	goro_waitgroup_add(&reuse_wg, 1);	/* before it returned */
	goro_yield();
	goro_sleep(100000000);
}

static void wg_reuse_child(void)
{
	goro_main(wg_reuse_main, NULL);
}

TEST(waitgroup_misuse)
{
	char buf[8192];
	int st;

	st = run_child(wg_negative_child, NULL, buf, sizeof(buf));
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(buf, "panic: sync: negative WaitGroup counter"));

	st = run_child(wg_reuse_child, NULL, buf, sizeof(buf));
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	ASSERT_NE(NULL, strstr(buf, "panic: sync: WaitGroup is reused before previous Wait has returned"));
}

/* ---------------------------------------------------------------------
 * Once
 * ------------------------------------------------------------------- */

static struct goro_once once;
static int once_calls, once_value;
static int once_saw[32];
static struct goro_waitgroup once_wg;

static void once_fn(void *arg)
{
	__atomic_add_fetch(&once_calls, 1, __ATOMIC_SEQ_CST);
	/* slow initialisation: others must wait for it */
	for (int i = 0; i < 20; i++)
		goro_yield();
	once_value = (int)(long)arg;
}

static void once_caller(void *arg)
{
	goro_once_do(&once, once_fn, (void *)42L);
	once_saw[(long)arg] = once_value;
	goro_waitgroup_done(&once_wg);
}

static void once_main(void *arg)
{
	(void)arg;
	goro_waitgroup_add(&once_wg, 32);
	for (long i = 0; i < 32; i++)
		go(once_caller, (void *)i);
	goro_waitgroup_wait(&once_wg);
	goro_once_do(&once, once_fn, (void *)7L);
}

TEST(once_runs_once)
{
	ASSERT_EQ(0, goro_main(once_main, NULL));
	ASSERT_EQ(1, once_calls);
	ASSERT_EQ(42, once_value);
	for (int i = 0; i < 32; i++)
		ASSERT_EQ(42, once_saw[i]);
}

/* ---------------------------------------------------------------------
 * Cond: a bounded queue with two conditions, and broadcast.
 * ------------------------------------------------------------------- */

#define CQ_CAP		8
#define CQ_PROD		4
#define CQ_CONS		4

static struct goro_mutex cq_mu;
static struct goro_cond cq_notempty, cq_notfull;
static long cq_buf[CQ_CAP];
static int cq_head, cq_len;
static long cq_sum, cq_got;
static struct goro_waitgroup cq_wg;

static void cq_producer(void *arg)
{
	long n = (long)arg;

	for (long i = 1; i <= n; i++) {
		goro_mutex_lock(&cq_mu);
		while (cq_len == CQ_CAP)
			goro_cond_wait(&cq_notfull);
		cq_buf[(cq_head + cq_len++) % CQ_CAP] = i;
		goro_cond_signal(&cq_notempty);
		goro_mutex_unlock(&cq_mu);
	}
	goro_waitgroup_done(&cq_wg);
}

static void cq_consumer(void *arg)
{
	long n = (long)arg;

	for (long i = 0; i < n; i++) {
		goro_mutex_lock(&cq_mu);
		while (cq_len == 0)
			goro_cond_wait(&cq_notempty);
		cq_sum += cq_buf[cq_head];
		cq_head = (cq_head + 1) % CQ_CAP;
		cq_len--;
		cq_got++;
		goro_cond_signal(&cq_notfull);
		goro_mutex_unlock(&cq_mu);
	}
	goro_waitgroup_done(&cq_wg);
}

static void cq_main(void *arg)
{
	long n = SCALE(20000L);

	(void)arg;
	goro_cond_init(&cq_notempty, &cq_mu);
	goro_cond_init(&cq_notfull, &cq_mu);
	goro_waitgroup_add(&cq_wg, CQ_PROD + CQ_CONS);
	for (int i = 0; i < CQ_PROD; i++)
		go(cq_producer, (void *)n);
	for (int i = 0; i < CQ_CONS; i++)
		go(cq_consumer, (void *)n);
	goro_waitgroup_wait(&cq_wg);
}

TEST(cond_signal_queue)
{
	long n = SCALE(20000L);

	ASSERT_EQ(0, goro_main(cq_main, NULL));
	ASSERT_EQ(CQ_PROD * n, cq_got);
	ASSERT_EQ(CQ_PROD * (n * (n + 1) / 2), cq_sum);
	ASSERT_EQ(0, cq_len);
}

#define BC_WAITERS	50
static struct goro_mutex bc_mu;
static struct goro_cond bc_cond;
static int bc_go, bc_waiting, bc_woken;
static struct goro_waitgroup bc_wg;

static void bc_waiter(void *arg)
{
	(void)arg;
	goro_mutex_lock(&bc_mu);
	bc_waiting++;
	while (!bc_go)
		goro_cond_wait(&bc_cond);
	bc_woken++;
	goro_mutex_unlock(&bc_mu);
	goro_waitgroup_done(&bc_wg);
}

static void bc_main(void *arg)
{
	int waiting;

	(void)arg;
	goro_cond_init(&bc_cond, &bc_mu);
	goro_waitgroup_add(&bc_wg, BC_WAITERS);
	for (int i = 0; i < BC_WAITERS; i++)
		go(bc_waiter, NULL);
	do {
		goro_yield();
		goro_mutex_lock(&bc_mu);
		waiting = bc_waiting;
		goro_mutex_unlock(&bc_mu);
	} while (waiting < BC_WAITERS);
	/* a signal with nobody left to wake is not remembered */
	goro_mutex_lock(&bc_mu);
	bc_go = 1;
	goro_cond_broadcast(&bc_cond);
	goro_mutex_unlock(&bc_mu);
	goro_waitgroup_wait(&bc_wg);
	goro_cond_signal(&bc_cond);
	goro_cond_broadcast(&bc_cond);
}

TEST(cond_broadcast_wakes_all)
{
	ASSERT_EQ(0, goro_main(bc_main, NULL));
	ASSERT_EQ(BC_WAITERS, bc_woken);
	ASSERT_EQ(bc_cond.wait, bc_cond.notify);
	ASSERT_EQ(NULL, bc_cond.head);
}

TEST_HARNESS_MAIN
