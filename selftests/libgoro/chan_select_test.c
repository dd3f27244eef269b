// SPDX-License-Identifier: MIT
/*
 * chan_select_test: goro_select.  Argument checks, ready cases, blocking
 * and being woken by a send, a receive or a close, nil cases, the same
 * channel in several cases, mixed send/recv, more cases than fit on the
 * stack, exactly-once delivery under concurrency (no case fires twice,
 * no value is lost), statistical fairness of the random choice, and the
 * panics and the forever-blocking empty select, in child processes.
 */
#include <errno.h>

#include "chan_test.h"

#define SEND	GORO_SELECT_SEND
#define RECV	GORO_SELECT_RECV
#define NB	GORO_SELECT_NONBLOCK

/* ---------------------------------------------------------------------
 * Arguments and ready cases
 * ------------------------------------------------------------------- */

static int basic_bad;

static void basic_main(void *arg)
{
	struct goro_chan *a = goro_chan_make(sizeof(long), 1);
	struct goro_chan *b = goro_chan_make(sizeof(long), 1);
	long va = 0, vb = 7;
	struct goro_select_case cs[3] = {
		{ .ch = a, .val = &va, .dir = RECV },
		{ .ch = b, .val = &vb, .dir = SEND },
		{ .ch = NULL, .val = &va, .dir = RECV },
	};
	int r;

	(void)arg;
	/* bad arguments */
	if (goro_select(cs, 3, 0x2) != -EINVAL ||
	    goro_select(cs, -1, 0) != -EINVAL ||
	    goro_select(cs, 65537, 0) != -EINVAL ||
	    goro_select(NULL, 1, 0) != -EINVAL)
		basic_bad |= 1;
	cs[2].dir = 0;
	if (goro_select(cs, 3, 0) != -EINVAL)
		basic_bad |= 2;
	cs[2].dir = RECV;
	/* nothing at all, or only nil channels: default */
	if (goro_select(NULL, 0, NB) != -EAGAIN ||
	    goro_select(&cs[2], 1, NB) != -EAGAIN)
		basic_bad |= 4;
	/* only the send is ready */
	r = goro_select(cs, 3, NB);
	if (r != 1 || cs[1].ok != 1 || goro_chan_len(b) != 1)
		basic_bad |= 8;
	/* now neither: a empty, b full */
	if (goro_select(cs, 3, NB) != -EAGAIN)
		basic_bad |= 16;
	/* only the receive is ready */
	goro_chan_send(a, &(long){ 42 });
	r = goro_select(cs, 3, 0);
	if (r != 0 || cs[0].ok != 1 || va != 42)
		basic_bad |= 32;
	/* receive into NULL discards */
	goro_chan_send(a, &(long){ 43 });
	cs[0].val = NULL;
	if (goro_select(cs, 1, 0) != 0 || goro_chan_len(a) != 0)
		basic_bad |= 64;
	/* closed channel: ready, ok = 0, zero value */
	cs[0].val = &va;
	va = 5;
	goro_chan_close(a);
	if (goro_select(cs, 1, NB) != 0 || cs[0].ok != 0 || va != 0)
		basic_bad |= 128;
}

TEST(args_and_ready_cases)
{
	ASSERT_EQ(0, goro_main(basic_main, NULL));
	ASSERT_EQ(0, basic_bad);
}

/* ---------------------------------------------------------------------
 * Blocking: woken by a sender, by a receiver, by close.
 * ------------------------------------------------------------------- */

static struct goro_chan *bl_ch[3];
static int bl_bad;

static void bl_send2(void *arg)
{
	(void)arg;
	wait_queued(bl_ch[2], false, 1);
	goro_chan_send(bl_ch[2], &(long){ 99 });
}

static void bl_recv1(void *arg)
{
	long v;

	(void)arg;
	wait_queued(bl_ch[1], true, 1);
	if (!goro_chan_recv(bl_ch[1], &v) || v != 1234)
		bl_bad |= 1;
}

static void bl_close0(void *arg)
{
	(void)arg;
	wait_queued(bl_ch[0], false, 1);
	goro_chan_close(bl_ch[0]);
}

static void blocking_main(void *arg)
{
	long out = 1234, in0 = 5, in2 = 0;
	struct goro_select_case cs[3];
	int r;

	(void)arg;
	for (int i = 0; i < 3; i++)
		bl_ch[i] = goro_chan_make(sizeof(long), 0);
	cs[0] = (struct goro_select_case){ bl_ch[0], &in0, RECV, 9 };
	cs[1] = (struct goro_select_case){ bl_ch[1], &out, SEND, 9 };
	cs[2] = (struct goro_select_case){ bl_ch[2], &in2, RECV, 9 };

	go(bl_send2, NULL);
	r = goro_select(cs, 3, 0);
	if (r != 2 || in2 != 99 || cs[2].ok != 1)
		bl_bad |= 2;
	/* the other sudogs were dequeued */
	if (queued(bl_ch[0], false) || queued(bl_ch[1], true))
		bl_bad |= 4;

	go(bl_recv1, NULL);
	r = goro_select(cs, 3, 0);
	if (r != 1 || cs[1].ok != 1)
		bl_bad |= 8;

	go(bl_close0, NULL);
	r = goro_select(cs, 3, 0);
	if (r != 0 || cs[0].ok != 0 || in0 != 0)
		bl_bad |= 16;
	if (queued(bl_ch[1], true) || queued(bl_ch[2], false))
		bl_bad |= 32;
}

TEST(blocking_woken_by_send_recv_close)
{
	ASSERT_EQ(0, goro_main(blocking_main, NULL));
	ASSERT_EQ(0, bl_bad);
}

/* ---------------------------------------------------------------------
 * The same channel in several cases; send and receive on one channel.
 * ------------------------------------------------------------------- */

static struct goro_chan *same_ch;
static int same_bad;
static struct goro_waitgroup same_wg;
static long same_sum;

static void same_sender(void *arg)
{
	goro_chan_send(same_ch, &(long){ (long)arg });
	goro_waitgroup_done(&same_wg);
}

/* Both sides select {send ch, recv ch}: they must pair up. */
static long pair_sent, pair_recvd;

static void pair_side(void *arg)
{
	long out = (long)arg, in = 0;
	struct goro_select_case cs[2] = {
		{ same_ch, &out, SEND, 0 },
		{ same_ch, &in, RECV, 0 },
	};
	int r = goro_select(cs, 2, 0);

	if (r == 0)
		__atomic_add_fetch(&pair_sent, out, __ATOMIC_SEQ_CST);
	else if (r == 1 && cs[1].ok)
		__atomic_add_fetch(&pair_recvd, in, __ATOMIC_SEQ_CST);
	else
		same_bad |= 1;
	goro_waitgroup_done(&same_wg);
}

static void same_main(void *arg)
{
	long v = 0;
	struct goro_select_case cs[4];

	(void)arg;
	same_ch = goro_chan_make(sizeof(long), 0);
	cs[0] = (struct goro_select_case){ same_ch, &v, RECV, 0 };
	cs[1] = (struct goro_select_case){ NULL, &v, RECV, 0 };
	cs[2] = (struct goro_select_case){ same_ch, &v, RECV, 0 };
	cs[3] = (struct goro_select_case){ same_ch, &v, RECV, 0 };
	goro_waitgroup_add(&same_wg, 20);
	for (long i = 1; i <= 20; i++)
		go(same_sender, (void *)i);
	for (int i = 0; i < 20; i++) {
		int r = goro_select(cs, 4, 0);

		if (r == 1 || r < 0 || !cs[r].ok)
			same_bad |= 2;
		same_sum += v;
	}
	goro_waitgroup_wait(&same_wg);
	if (goro_select(cs, 4, NB) != -EAGAIN)
		same_bad |= 4;

	/* pairs of goroutines each offering to send and to receive */
	goro_waitgroup_add(&same_wg, 200);
	for (long i = 1; i <= 200; i++)
		go(pair_side, (void *)i);
	goro_waitgroup_wait(&same_wg);
}

TEST(same_channel_in_several_cases)
{
	ASSERT_EQ(0, goro_main(same_main, NULL));
	ASSERT_EQ(0, same_bad);
	ASSERT_EQ(20 * 21 / 2, same_sum);
	ASSERT_EQ(pair_sent, pair_recvd);
	ASSERT_GT(pair_sent, 0);
}

/* ---------------------------------------------------------------------
 * More cases than the on-stack arrays hold.
 * ------------------------------------------------------------------- */

static int big_bad;

static void big_main(void *arg)
{
	enum { N = 100 };
	struct goro_chan *chs[N];
	struct goro_select_case cs[N];
	long vals[N];

	(void)arg;
	for (int i = 0; i < N; i++) {
		chs[i] = goro_chan_make(sizeof(long), 1);
		cs[i] = (struct goro_select_case){ chs[i], &vals[i], RECV, 0 };
	}
	if (goro_select(cs, N, NB) != -EAGAIN)
		big_bad |= 1;
	goro_chan_send(chs[73], &(long){ 73 });
	if (goro_select(cs, N, 0) != 73 || vals[73] != 73)
		big_bad |= 2;
	for (int i = 0; i < N; i++)
		goro_chan_free(chs[i]);
}

TEST(many_cases)
{
	ASSERT_EQ(0, goro_main(big_main, NULL));
	ASSERT_EQ(0, big_bad);
}

/* ---------------------------------------------------------------------
 * Exactly once: one selecting receiver against 8 concurrent senders and
 * one selecting sender against 8 receivers, on both Ps.  A case that
 * fired twice would duplicate or lose a value (or leave a peer blocked).
 * ------------------------------------------------------------------- */

#define EO_CH	8
static struct goro_chan *eo_ch[EO_CH];
static long eo_n;
static struct goro_waitgroup eo_wg;
static long eo_sum_recv, eo_count_recv;

static void eo_sender(void *arg)
{
	long id = (long)arg;

	for (long i = 0; i < eo_n; i++)
		goro_chan_send(eo_ch[id], &(long){ id * eo_n + i });
	goro_waitgroup_done(&eo_wg);
}

static void eo_receiver(void *arg)
{
	long id = (long)arg, v, last = -1;

	for (long i = 0; i < eo_n; i++) {
		if (!goro_chan_recv(eo_ch[id], &v) || v <= last)
			eo_count_recv = -1000000000;
		last = v;
		__atomic_add_fetch(&eo_sum_recv, v, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(&eo_count_recv, 1, __ATOMIC_SEQ_CST);
	}
	goro_waitgroup_done(&eo_wg);
}

static long eo_sel_sum, eo_sel_count;
static int eo_bad;

static void eo_main(void *arg)
{
	struct goro_select_case cs[EO_CH];
	long vals[EO_CH], next[EO_CH] = { 0 };

	(void)arg;
	eo_n = SCALE(20000);
	for (int i = 0; i < EO_CH; i++)
		eo_ch[i] = goro_chan_make(sizeof(long), (size_t)(i & 1));

	/* select receiving from 8 senders */
	for (int i = 0; i < EO_CH; i++)
		cs[i] = (struct goro_select_case){ eo_ch[i], &vals[i], RECV, 0 };
	goro_waitgroup_add(&eo_wg, EO_CH);
	for (long i = 0; i < EO_CH; i++)
		go(eo_sender, (void *)i);
	for (long k = 0; k < EO_CH * eo_n; k++) {
		int r = goro_select(cs, EO_CH, 0);

		if (r < 0 || !cs[r].ok || vals[r] != r * eo_n + next[r]++) {
			eo_bad |= 1;
			break;
		}
		eo_sel_sum += vals[r];
		eo_sel_count++;
	}
	goro_waitgroup_wait(&eo_wg);

	/* select sending to 8 receivers */
	for (int i = 0; i < EO_CH; i++) {
		cs[i] = (struct goro_select_case){ eo_ch[i], &vals[i], SEND, 0 };
		next[i] = 0;
	}
	goro_waitgroup_add(&eo_wg, EO_CH);
	for (long i = 0; i < EO_CH; i++)
		go(eo_receiver, (void *)i);
	for (long k = 0; k < EO_CH * eo_n; k++) {
		for (int i = 0; i < EO_CH; i++)
			vals[i] = next[i] < eo_n ? i * eo_n + next[i] : 0;
		for (int i = 0; i < EO_CH; i++)
			cs[i].ch = next[i] < eo_n ? eo_ch[i] : NULL;
		int r = goro_select(cs, EO_CH, 0);

		if (r < 0 || !cs[r].ok) {
			eo_bad |= 2;
			break;
		}
		next[r]++;
	}
	goro_waitgroup_wait(&eo_wg);
}

TEST(select_never_fires_twice)
{
	long n, total;

	ASSERT_EQ(0, goro_main(eo_main, NULL));
	n = SCALE(20000);
	total = EO_CH * n;
	ASSERT_EQ(0, eo_bad);
	ASSERT_EQ(total, eo_sel_count);
	ASSERT_EQ(total * (total - 1) / 2, eo_sel_sum);
	ASSERT_EQ(total, eo_count_recv);
	ASSERT_EQ(total * (total - 1) / 2, eo_sum_recv);
}

/* ---------------------------------------------------------------------
 * Fairness: with every case ready, each is chosen with probability 1/n.
 * ------------------------------------------------------------------- */

#define FAIR_CASES	4
#define FAIR_ROUNDS	40000
static long fair_hits[FAIR_CASES];
static long fair_hits2[2];

static void fair_main(void *arg)
{
	struct goro_chan *chs[FAIR_CASES];
	struct goro_select_case cs[FAIR_CASES];
	long v;

	(void)arg;
	for (int i = 0; i < FAIR_CASES; i++) {
		chs[i] = goro_chan_make(sizeof(long), 1);
		cs[i] = (struct goro_select_case){ chs[i], &v, RECV, 0 };
		goro_chan_send(chs[i], &(long){ i });
	}
	for (int k = 0; k < FAIR_ROUNDS; k++) {
		int r = goro_select(cs, FAIR_CASES, NB);

		if (r < 0 || v != r)
			return;
		fair_hits[r]++;
		goro_chan_send(chs[r], &(long){ r });	/* ready again */
	}
	/* a ready send against a ready receive */
	cs[0] = (struct goro_select_case){ chs[0], &v, RECV, 0 };
	cs[1] = (struct goro_select_case){ chs[1], &v, SEND, 0 };
	goro_chan_recv(chs[1], NULL);
	for (int k = 0; k < FAIR_ROUNDS; k++) {
		int r = goro_select(cs, 2, NB);

		if (r < 0)
			return;
		fair_hits2[r]++;
		if (r == 0)
			goro_chan_send(chs[0], &(long){ 0 });
		else
			goro_chan_recv(chs[1], NULL);
	}
}

TEST(fairness)
{
	double e, chi2 = 0, chi2b = 0;

	ASSERT_EQ(0, goro_main(fair_main, NULL));
	e = (double)FAIR_ROUNDS / FAIR_CASES;
	for (int i = 0; i < FAIR_CASES; i++)
		chi2 += (fair_hits[i] - e) * (fair_hits[i] - e) / e;
	e = FAIR_ROUNDS / 2.0;
	for (int i = 0; i < 2; i++)
		chi2b += (fair_hits2[i] - e) * (fair_hits2[i] - e) / e;
	TH_LOG("hits %ld %ld %ld %ld chi2=%.2f; %ld %ld chi2=%.2f",
	       fair_hits[0], fair_hits[1], fair_hits[2], fair_hits[3], chi2,
	       fair_hits2[0], fair_hits2[1], chi2b);
	/* p < 1e-6 thresholds: 3 and 1 degrees of freedom */
	ASSERT_LT(chi2, 30.7);
	ASSERT_LT(chi2b, 24.0);
}

/* ---------------------------------------------------------------------
 * Panics and blocking forever
 * ------------------------------------------------------------------- */

static void sel_send_closed_main(void *arg)
{
	struct goro_chan *c = goro_chan_make(4, 0);
	struct goro_select_case cs[1] = { { c, &(int){ 1 }, SEND, 0 } };

	(void)arg;
	goro_chan_close(c);
	goro_select(cs, 1, NB);
}

static void sel_send_closed_child(void)
{
	goro_main(sel_send_closed_main, NULL);
}

static struct goro_chan *sbc_ch;

static void sbc_closer(void *arg)
{
	(void)arg;
	wait_queued(sbc_ch, true, 1);
	goro_chan_close(sbc_ch);
}

static void sel_blocked_send_close_main(void *arg)
{
	struct goro_chan *other = goro_chan_make(4, 0);
	struct goro_select_case cs[2];

	(void)arg;
	sbc_ch = goro_chan_make(4, 0);
	cs[0] = (struct goro_select_case){ other, &(int){ 0 }, RECV, 0 };
	cs[1] = (struct goro_select_case){ sbc_ch, &(int){ 1 }, SEND, 0 };
	go(sbc_closer, NULL);
	goro_select(cs, 2, 0);
}

static void sel_blocked_send_close_child(void)
{
	goro_main(sel_blocked_send_close_main, NULL);
}

static void empty_select_main(void *arg)
{
	(void)arg;
	goro_select(NULL, 0, 0);
}

static void empty_select_child(void)
{
	goro_main(empty_select_main, NULL);
}

static void nil_select_main(void *arg)
{
	struct goro_select_case cs[1] = { { NULL, NULL, RECV, 0 } };

	(void)arg;
	goro_select(cs, 1, 0);
}

static void nil_select_child(void)
{
	goro_main(nil_select_main, NULL);
}

TEST(panics_and_forever)
{
	expect_child(_metadata, sel_send_closed_child,
		     "panic: send on closed channel");
	expect_child(_metadata, sel_blocked_send_close_child,
		     "panic: send on closed channel");
	expect_child(_metadata, empty_select_child,
		     "fatal error: all goroutines are asleep - deadlock!");
	expect_child(_metadata, empty_select_child, "[select (no cases)");
	expect_child(_metadata, nil_select_child,
		     "fatal error: all goroutines are asleep - deadlock!");
}

TEST_HARNESS_MAIN
