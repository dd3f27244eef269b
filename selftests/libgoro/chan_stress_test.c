// SPDX-License-Identifier: MIT
/*
 * chan_stress_test: channels as programs use them.  The concurrent
 * prime sieve (a goroutine per prime), power series over channels
 * (exp, sin and cos defined by their own integrals, fed back through
 * split goroutines that use select), many producers and consumers over
 * one channel on both Ps with an exact checksum (10 000 000 items; a
 * twentieth under ASan/TSan, see SCALE in chan_test.h), and consumers
 * selecting over 8 channels that producers close concurrently.
 */
#include <math.h>

#include "chan_test.h"

/* ---------------------------------------------------------------------
 * Prime sieve
 * ------------------------------------------------------------------- */

struct filter {
	struct goro_chan *in, *out;
	long prime;
};

static void generate(void *arg)
{
	struct goro_chan *ch = arg;

	for (long i = 2;; i++)
		goro_chan_send(ch, &i);
}

static void filter(void *arg)
{
	struct filter f = *(struct filter *)arg;
	long v;

	free(arg);
	for (;;) {
		goro_chan_recv(f.in, &v);
		if (v % f.prime)
			goro_chan_send(f.out, &v);
	}
}

/* the 1000th prime is 7919; the 300th, 1987 (sanitizers) */
#define SIEVE_N		(SANITIZED ? 300 : 1000)
#define SIEVE_LAST	(SANITIZED ? 1987 : 7919)
static long primes[1000];

static void sieve_main(void *arg)
{
	struct goro_chan *ch = goro_chan_make(sizeof(long), (size_t)(long)arg);

	go(generate, ch);
	for (int i = 0; i < SIEVE_N; i++) {
		struct filter *f = malloc(sizeof(*f));

		goro_chan_recv(ch, &primes[i]);
		f->in = ch;
		f->out = goro_chan_make(sizeof(long), (size_t)(long)arg);
		f->prime = primes[i];
		ch = f->out;		/* f is the filter's once it runs */
		go(filter, f);
	}
	/* the filters are abandoned blocked, as in Go */
}

static int is_prime(long n)
{
	for (long d = 2; d * d <= n; d++)
		if (n % d == 0)
			return 0;
	return n >= 2;
}

static void check_primes(struct __test_metadata *_metadata)
{
	ASSERT_EQ(2, primes[0]);
	for (int i = 1; i < SIEVE_N; i++) {
		ASSERT_LT(primes[i - 1], primes[i]);
		for (long n = primes[i - 1] + 1; n < primes[i]; n++)
			ASSERT_EQ(0, is_prime(n));
		ASSERT_EQ(1, is_prime(primes[i]));
	}
	ASSERT_EQ(SIEVE_LAST, primes[SIEVE_N - 1]);
}

TEST(prime_sieve_unbuffered)
{
	ASSERT_EQ(0, goro_main(sieve_main, (void *)0L));
	check_primes(_metadata);
}

TEST(prime_sieve_buffered)
{
	ASSERT_EQ(0, goro_main(sieve_main, (void *)16L));
	check_primes(_metadata);
}

/* ---------------------------------------------------------------------
 * Power series: a series is a channel of double coefficients.
 * integ(c, in): c, in[0]/1, in[1]/2, ...; split(in) -> two copies; the
 * feedback loops X = integ(c, X) solve X' = X etc. lazily.
 * ------------------------------------------------------------------- */

#define PS_TERMS	20

struct integ_arg {
	double c;
	struct goro_chan *in, *out;
	double sign;
};

static void integ(void *arg)
{
	struct integ_arg a = *(struct integ_arg *)arg;
	double x;

	free(arg);
	goro_chan_send(a.out, &a.c);
	for (int n = 1; n < PS_TERMS; n++) {
		goro_chan_recv(a.in, &x);
		x = a.sign * x / n;
		goro_chan_send(a.out, &x);
	}
}

struct split_arg {
	struct goro_chan *in, *a, *b;
};

/* Copy each term of in to a and b, in whichever order they take it. */
static void split(void *arg)
{
	struct split_arg s = *(struct split_arg *)arg;
	double x;

	free(arg);
	for (int n = 0; n < PS_TERMS; n++) {
		struct goro_select_case cs[2] = {
			{ s.a, &x, GORO_SELECT_SEND, 0 },
			{ s.b, &x, GORO_SELECT_SEND, 0 },
		};
		int r;

		goro_chan_recv(s.in, &x);
		r = goro_select(cs, 2, 0);
		goro_select(&cs[1 - r], 1, 0);
	}
}

static struct goro_chan *mkch(void)
{
	return goro_chan_make(sizeof(double), 0);
}

static void spawn_integ(double c, struct goro_chan *in, struct goro_chan *out,
			double sign)
{
	struct integ_arg *a = malloc(sizeof(*a));

	*a = (struct integ_arg){ c, in, out, sign };
	go(integ, a);
}

static void spawn_split(struct goro_chan *in, struct goro_chan *a,
			struct goro_chan *b)
{
	struct split_arg *s = malloc(sizeof(*s));

	*s = (struct split_arg){ in, a, b };
	go(split, s);
}

static double ps_exp[PS_TERMS], ps_sin[PS_TERMS], ps_cos[PS_TERMS];

static void powser_main(void *arg)
{
	struct goro_chan *e_out = mkch(), *e_fb = mkch(), *e_res = mkch();
	struct goro_chan *s_out = mkch(), *s_fb = mkch(), *s_res = mkch();
	struct goro_chan *c_out = mkch(), *c_fb = mkch(), *c_res = mkch();

	(void)arg;
	/* exp = 1 + integral(exp) */
	spawn_integ(1, e_fb, e_out, 1);
	spawn_split(e_out, e_fb, e_res);
	/* sin = integral(cos), cos = 1 - integral(sin) */
	spawn_integ(0, c_fb, s_out, 1);
	spawn_integ(1, s_fb, c_out, -1);
	spawn_split(s_out, s_fb, s_res);
	spawn_split(c_out, c_fb, c_res);
	for (int n = 0; n < PS_TERMS; n++) {
		/* the three series are consumed in an interleaved order */
		struct goro_select_case cs[3] = {
			{ e_res, &ps_exp[n], GORO_SELECT_RECV, 0 },
			{ s_res, &ps_sin[n], GORO_SELECT_RECV, 0 },
			{ c_res, &ps_cos[n], GORO_SELECT_RECV, 0 },
		};

		for (int k = 0; k < 3; k++) {
			int r = goro_select(cs, 3, 0);

			cs[r].ch = NULL;
		}
	}
}

TEST(power_series)
{
	double fact = 1;

	ASSERT_EQ(0, goro_main(powser_main, NULL));
	for (int n = 0; n < PS_TERMS; n++) {
		double want_sin = n % 2 ? ((n / 2) % 2 ? -1 : 1) / fact : 0;
		double want_cos = n % 2 ? 0 : ((n / 2) % 2 ? -1 : 1) / fact;

		ASSERT_LT(fabs(ps_exp[n] - 1 / fact), 1e-12 / fact);
		ASSERT_LT(fabs(ps_sin[n] - want_sin), 1e-12 / fact);
		ASSERT_LT(fabs(ps_cos[n] - want_cos), 1e-12 / fact);
		fact *= n + 1;
	}
}

/* ---------------------------------------------------------------------
 * Many producers and consumers over one channel, both Ps.
 * ------------------------------------------------------------------- */

#define MPMC_PROD	8
#define MPMC_CONS	8
#define MPMC_ITEMS	SCALE(10000000L)

static struct goro_chan *mp_ch;
static struct goro_waitgroup mp_prod_wg, mp_cons_wg;
static uint64_t mp_sum, mp_xor, mp_count;
static long mp_items;

static void mp_producer(void *arg)
{
	long id = (long)arg, per = mp_items / MPMC_PROD;

	for (long i = id * per; i < (id + 1) * per; i++) {
		uint64_t v = (uint64_t)i;

		goro_chan_send(mp_ch, &v);
	}
	goro_waitgroup_done(&mp_prod_wg);
}

static void mp_consumer(void *arg)
{
	uint64_t v, sum = 0, x = 0, n = 0;

	(void)arg;
	while (goro_chan_recv(mp_ch, &v)) {
		sum += v;
		x ^= v * 0x9e3779b97f4a7c15ULL;
		n++;
	}
	__atomic_add_fetch(&mp_sum, sum, __ATOMIC_SEQ_CST);
	__atomic_xor_fetch(&mp_xor, x, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&mp_count, n, __ATOMIC_SEQ_CST);
	goro_waitgroup_done(&mp_cons_wg);
}

static void mpmc_main(void *arg)
{
	mp_ch = goro_chan_make(sizeof(uint64_t), (size_t)(long)arg);
	goro_waitgroup_add(&mp_prod_wg, MPMC_PROD);
	goro_waitgroup_add(&mp_cons_wg, MPMC_CONS);
	for (long i = 0; i < MPMC_CONS; i++)
		go(mp_consumer, NULL);
	for (long i = 0; i < MPMC_PROD; i++)
		go(mp_producer, (void *)i);
	goro_waitgroup_wait(&mp_prod_wg);
	goro_chan_close(mp_ch);
	goro_waitgroup_wait(&mp_cons_wg);
	goro_chan_free(mp_ch);
}

static void check_mpmc(struct __test_metadata *_metadata, long items)
{
	uint64_t x = 0;

	for (uint64_t i = 0; i < (uint64_t)items; i++)
		x ^= i * 0x9e3779b97f4a7c15ULL;
	ASSERT_EQ((uint64_t)items, mp_count);
	ASSERT_EQ((uint64_t)items * (items - 1) / 2, mp_sum);
	ASSERT_EQ(x, mp_xor);
}

TEST(mpmc_buffered_10M)
{
	mp_items = MPMC_ITEMS;
	ASSERT_EQ(0, goro_main(mpmc_main, (void *)128L));
	check_mpmc(_metadata, mp_items);
}

/*
 * The lock-free ring at its edges (chan.c): one slot, where a slot's
 * "written" and the next lap's "free" must differ; a capacity that is
 * not a power of two (the ring has more slots than cap); a small
 * power of two; producers and consumers on both Ps blocking all the
 * time, and the close racing the consumers' drain.
 */
static void mpmc_small(struct __test_metadata *_metadata, long cap)
{
	mp_items = MPMC_ITEMS / 10;
	mp_sum = mp_xor = mp_count = 0;
	ASSERT_EQ(0, goro_main(mpmc_main, (void *)cap));
	check_mpmc(_metadata, mp_items);
}

TEST(mpmc_buffered_cap1)
{
	mpmc_small(_metadata, 1);
}

TEST(mpmc_buffered_cap3)
{
	mpmc_small(_metadata, 3);
}

TEST(mpmc_buffered_cap4)
{
	mpmc_small(_metadata, 4);
}

/*
 * A sender that meets its receiver's move of a slot waits until the
 * receiver is a stretch ahead (chan.c, Batching) - but only a few
 * microseconds: here the receiver stops after a few values, with room
 * left in the buffer, and every send that fits must still complete at
 * once (an unbounded wait hangs here, the harness's timeout fails it),
 * in order.  Both Ps, many rounds, so that the stop falls inside the
 * sender's wait now and then.
 */
#define STOP_CAP	64
#define STOP_ROUNDS	SCALE(20000L)

static struct goro_chan *stop_ch;
static struct goro_waitgroup stop_wg;
static long stop_take, stop_bad;

static void stop_receiver(void *arg)
{
	long v;

	(void)arg;
	for (long i = 0; i < stop_take; i++)
		if (!goro_chan_recv(stop_ch, &v) || v != i)
			stop_bad++;
	goro_waitgroup_done(&stop_wg);
}

static void stop_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(2);
	for (long r = 0; r < STOP_ROUNDS; r++) {
		long v, n;

		stop_ch = goro_chan_make(sizeof(long), STOP_CAP);
		stop_take = 1 + r % (STOP_CAP - 1);
		n = stop_take + STOP_CAP;
		goro_waitgroup_add(&stop_wg, 1);
		go(stop_receiver, NULL);
		for (long i = 0; i < n; i++)
			goro_chan_send(stop_ch, &i);
		goro_waitgroup_wait(&stop_wg);
		/* full now: the rest is there, in order */
		v = n;
		if (goro_chan_try_send(stop_ch, &v) ||
		    goro_chan_len(stop_ch) != STOP_CAP)
			stop_bad++;
		for (long i = stop_take; i < n; i++)
			if (!goro_chan_recv(stop_ch, &v) || v != i)
				stop_bad++;
		goro_chan_free(stop_ch);
	}
}

TEST(buffered_send_waits_only_briefly)
{
	ASSERT_EQ(0, goro_main(stop_main, NULL));
	EXPECT_EQ(0, stop_bad);
}

TEST(mpmc_unbuffered)
{
	/* unbuffered is a context switch per item: a tenth of the items */
	mp_items = MPMC_ITEMS / 10;
	ASSERT_EQ(0, goro_main(mpmc_main, (void *)0L));
	check_mpmc(_metadata, mp_items);
}

/* ---------------------------------------------------------------------
 * Consumers selecting over 8 channels closed by their producers.
 * ------------------------------------------------------------------- */

#define SC_CH		8
#define SC_CONS		4
#define SC_PER		SCALE(200000L)

static struct goro_chan *sc_ch[SC_CH];
static struct goro_waitgroup sc_wg;
static uint64_t sc_sum, sc_count;
static int sc_bad;

static void sc_producer(void *arg)
{
	long id = (long)arg;

	for (long i = 0; i < SC_PER; i++)
		goro_chan_send(sc_ch[id], &(uint64_t){ id * SC_PER + i });
	goro_chan_close(sc_ch[id]);
}

static void sc_consumer(void *arg)
{
	struct goro_select_case cs[SC_CH];
	uint64_t v, sum = 0, n = 0;
	int open = SC_CH;

	(void)arg;
	for (int i = 0; i < SC_CH; i++)
		cs[i] = (struct goro_select_case){ sc_ch[i], &v,
						   GORO_SELECT_RECV, 0 };
	while (open > 0) {
		int r = goro_select(cs, SC_CH, 0);

		if (r < 0) {
			sc_bad = 1;
			break;
		}
		if (!cs[r].ok) {
			if (v != 0)
				sc_bad = 1;
			cs[r].ch = NULL;	/* closed: drop the case */
			open--;
			continue;
		}
		sum += v;
		n++;
	}
	__atomic_add_fetch(&sc_sum, sum, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&sc_count, n, __ATOMIC_SEQ_CST);
	goro_waitgroup_done(&sc_wg);
}

static void sc_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < SC_CH; i++)
		sc_ch[i] = goro_chan_make(sizeof(uint64_t), (size_t)(i % 3) * 4);
	goro_waitgroup_add(&sc_wg, SC_CONS);
	for (long i = 0; i < SC_CONS; i++)
		go(sc_consumer, NULL);
	for (long i = 0; i < SC_CH; i++)
		go(sc_producer, (void *)i);
	goro_waitgroup_wait(&sc_wg);
}

TEST(select_over_closing_channels)
{
	uint64_t total = SC_CH * SC_PER;

	ASSERT_EQ(0, goro_main(sc_main, NULL));
	ASSERT_EQ(0, sc_bad);
	ASSERT_EQ(total, sc_count);
	ASSERT_EQ(total * (total - 1) / 2, sc_sum);
}

/* ---------------------------------------------------------------------
 * Freeing a buffered channel as soon as the last operation on it is seen
 *
 * A ring operation moves its element before it looks for a waiter to
 * wake: the side that sees the move may free the channel at once, and
 * the other side must not touch it after (ASan and TSan reported the
 * wake check reading freed memory).
 * ------------------------------------------------------------------- */

#define FREE_ROUNDS	SCALE(200000L)

static void free_sender(void *arg)
{
	int v = 7;

	goro_chan_send(arg, &v);
}

/* The receiver of the only value frees the channel. */
static void free_recv_main(void *arg)
{
	(void)arg;
	for (long i = 0; i < FREE_ROUNDS; i++) {
		struct goro_chan *c = goro_chan_make(sizeof(int), 1);
		int v = 0;

		if (!c || go(free_sender, c))
			abort();
		if (goro_chan_recv(c, &v) != 1 || v != 7)
			abort();
		goro_chan_free(c);
	}
}

struct free_pair {
	struct goro_chan *c;
	struct goro_waitgroup *wg;
};

static void free_taker(void *arg)
{
	struct free_pair *fp = arg;
	struct goro_waitgroup *wg = fp->wg;
	int v;

	if (goro_chan_recv(fp->c, &v) != 1)
		abort();
	goro_waitgroup_done(wg);
}

/* A sender blocked on a full ring is woken with its value moved in by
 * the receiver, and frees the channel while that receiver may still be
 * in its wake-up. */
static void free_send_main(void *arg)
{
	(void)arg;
	for (long i = 0; i < FREE_ROUNDS / 4; i++) {
		struct goro_waitgroup wg = { 0 };
		struct free_pair fp = { goro_chan_make(sizeof(int), 1), &wg };
		int v = 1;

		if (!fp.c)
			abort();
		goro_chan_send(fp.c, &v);	/* the ring is full */
		goro_waitgroup_add(&wg, 1);
		if (go(free_taker, &fp))
			abort();
		goro_chan_send(fp.c, &v);	/* blocks until the taker */
		goro_waitgroup_wait(&wg);
		goro_chan_free(fp.c);
	}
}

static void free_closer(void *arg)
{
	goro_chan_close(arg);
}

/* A receiver that sees the close frees the channel while the closer may
 * still hold its lock (ASan and TSan reported the closer's unlock and
 * waiter scan touching freed memory). */
static void free_close_main(void *arg)
{
	(void)arg;
	goro_set_maxprocs(2);	/* the race needs both; procs1/ runs it too */
	for (long i = 0; i < FREE_ROUNDS / 8; i++) {
		struct goro_chan *c = goro_chan_make(sizeof(int), i & 1);
		int v = 3, r;

		if (!c || go(free_closer, c))
			abort();
		/* spin, not park: the closer runs on the other P */
		while (!(r = goro_chan_try_recv(c, &v)))
			__builtin_ia32_pause();
		if (r != -EPIPE || v != 0)
			abort();
		goro_chan_free(c);
	}
}

TEST(free_after_last_receive)
{
	ASSERT_EQ(0, goro_main(free_recv_main, NULL));
}

TEST(free_after_woken_send)
{
	ASSERT_EQ(0, goro_main(free_send_main, NULL));
}

TEST(free_after_seen_close)
{
	ASSERT_EQ(0, goro_main(free_close_main, NULL));
}

TEST_HARNESS_MAIN
