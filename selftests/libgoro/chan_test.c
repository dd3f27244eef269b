// SPDX-License-Identifier: MIT
/*
 * chan_test: the semantics of goro channels, one behaviour per test:
 * unbuffered rendezvous and buffered FIFO for element sizes 0 .. 70 000
 * bytes, FIFO order of blocked senders and receivers, non-blocking
 * operations on every kind of channel (nil, unbuffered, buffered empty,
 * partial, full, closed), close (drain, then zero values; waking blocked
 * receivers), nil channels blocking forever (seen by deadlock
 * detection), and the panics, each in a child process that must exit
 * with status 2 and Go's message.
 */
#include <errno.h>

#include "chan_test.h"

/* ---------------------------------------------------------------------
 * Element sizes, unbuffered and buffered.
 * ------------------------------------------------------------------- */

static const size_t sizes[] = { 0, 1, 2, 3, 4, 7, 8, 16, 24, 100, 4096,
				70000 };
#define NSIZES	(sizeof(sizes) / sizeof(sizes[0]))
#define PER_SIZE	20

struct size_job {
	struct goro_chan *ch;
	size_t size;
	struct goro_waitgroup *wg;
};

static void fill(unsigned char *p, size_t size, int seq)
{
	for (size_t i = 0; i < size; i++)
		p[i] = (unsigned char)(seq * 31 + i * 7 + 1);
}

static void size_sender(void *arg)
{
	struct size_job *j = arg;
	unsigned char v[70000];

	for (int k = 0; k < PER_SIZE; k++) {
		fill(v, j->size, k);
		goro_chan_send(j->ch, v);
	}
	goro_waitgroup_done(j->wg);
}

static int size_bad;

static void sizes_run(size_t cap)
{
	static unsigned char want[70000], got[70001];
	struct goro_waitgroup wg = { 0 };
	struct size_job j;

	for (size_t s = 0; s < NSIZES; s++) {
		j.ch = goro_chan_make(sizes[s], cap);
		j.size = sizes[s];
		j.wg = &wg;
		if (!j.ch) {
			size_bad = 1;
			return;
		}
		goro_waitgroup_add(&wg, 1);
		go(size_sender, &j);
		for (int k = 0; k < PER_SIZE; k++) {
			memset(got, 0xcc, sizes[s] + 1);
			if (!goro_chan_recv(j.ch, got))
				size_bad = 1;
			fill(want, sizes[s], k);
			if (memcmp(want, got, sizes[s]) || got[sizes[s]] != 0xcc)
				size_bad = 1;
		}
		goro_waitgroup_wait(&wg);
		if (goro_chan_len(j.ch) != 0 || goro_chan_cap(j.ch) != cap)
			size_bad = 1;
		goro_chan_free(j.ch);
	}
}

static void sizes_main(void *arg)
{
	sizes_run((size_t)(long)arg);
}

TEST(unbuffered_all_sizes)
{
	ASSERT_EQ(0, goro_main(sizes_main, (void *)0L));
	ASSERT_EQ(0, size_bad);
}

TEST(buffered_all_sizes)
{
	ASSERT_EQ(0, goro_main(sizes_main, (void *)3L));
	ASSERT_EQ(0, size_bad);
}

/* ---------------------------------------------------------------------
 * Buffered channel basics: len, cap, FIFO, wrap-around.
 * ------------------------------------------------------------------- */

static int buf_bad;

static void buffered_main(void *arg)
{
	struct goro_chan *c = goro_chan_make(sizeof(long), 5);
	long v;

	(void)arg;
	/* many laps around the ring */
	for (long lap = 0; lap < 100; lap++) {
		for (long i = 0; i < 5; i++)
			if (!goro_chan_try_send(c, &(long){ lap * 10 + i }))
				buf_bad |= 1;
		if (goro_chan_len(c) != 5)
			buf_bad |= 2;
		if (goro_chan_try_send(c, &(long){ -1 }))
			buf_bad |= 4;
		for (long i = 0; i < 3; i++)
			if (!goro_chan_recv(c, &v) || v != lap * 10 + i)
				buf_bad |= 8;
		if (goro_chan_len(c) != 2)
			buf_bad |= 16;
		for (long i = 3; i < 5; i++)
			if (goro_chan_try_recv(c, &v) != 1 || v != lap * 10 + i)
				buf_bad |= 32;
		if (goro_chan_try_recv(c, &v) != 0)
			buf_bad |= 64;
	}
	if (goro_chan_cap(c) != 5)
		buf_bad |= 128;
	goro_chan_free(c);
}

TEST(buffered_fifo_len_cap)
{
	ASSERT_EQ(0, goro_main(buffered_main, NULL));
	ASSERT_EQ(0, buf_bad);
}

/* Every capacity from 1 to 9 holds exactly cap values, lap after lap
 * (the ring rounds its slots up to a power of two: cap still rules). */
static void caps_main(void *arg)
{
	(void)arg;
	for (long cap = 1; cap <= 9; cap++) {
		struct goro_chan *c = goro_chan_make(sizeof(long), cap);
		long v;

		for (long lap = 0; lap < 50; lap++) {
			for (long i = 0; i < cap; i++)
				if (!goro_chan_try_send(c, &(long){ lap * 100 + i }))
					buf_bad |= 1;
			if ((long)goro_chan_len(c) != cap ||
			    goro_chan_try_send(c, &(long){ -1 }))
				buf_bad |= 2;
			for (long i = 0; i < cap; i++)
				if (goro_chan_try_recv(c, &v) != 1 ||
				    v != lap * 100 + i)
					buf_bad |= 4;
			if (goro_chan_len(c) != 0 ||
			    goro_chan_try_recv(c, &v) != 0)
				buf_bad |= 8;
			/* and a partial fill, so the laps do not line up */
			if (!goro_chan_try_send(c, &lap) ||
			    goro_chan_try_recv(c, &v) != 1 || v != lap)
				buf_bad |= 16;
		}
		goro_chan_free(c);
	}
}

TEST(buffered_every_small_cap)
{
	buf_bad = 0;
	ASSERT_EQ(0, goro_main(caps_main, NULL));
	ASSERT_EQ(0, buf_bad);
}

TEST(make_failure_and_nil_len)
{
	ASSERT_EQ(NULL, goro_chan_make(SIZE_MAX / 2, 4));
	ASSERT_EQ(NULL, goro_chan_make(2, SIZE_MAX / 2));
	ASSERT_EQ(0, goro_chan_len(NULL));
	ASSERT_EQ(0, goro_chan_cap(NULL));
	goro_chan_free(NULL);
}

/* ---------------------------------------------------------------------
 * FIFO order of blocked senders / receivers: each is spawned only once
 * the previous one is queued, and they must be served in that order.
 * ------------------------------------------------------------------- */

#define FIFO_N	16
static struct goro_chan *fifo_ch;
static long fifo_recv_order[FIFO_N];
static int fifo_recv_pos;
static int fifo_bad;

static void fifo_sender(void *arg)
{
	long v = (long)arg;

	goro_chan_send(fifo_ch, &v);
}

static void fifo_receiver(void *arg)
{
	long v;

	(void)arg;
	if (!goro_chan_recv(fifo_ch, &v))
		fifo_bad = 1;
	fifo_recv_order[fifo_recv_pos] = v;
	__atomic_add_fetch(&fifo_recv_pos, 1, __ATOMIC_SEQ_CST);
}

static void fifo_main(void *arg)
{
	size_t cap = (size_t)(long)arg;
	long v;

	fifo_ch = goro_chan_make(sizeof(long), cap);
	/* senders: the buffer fills, the rest block in order */
	for (long i = 0; i < FIFO_N; i++) {
		go(fifo_sender, (void *)i);
		if ((size_t)i < cap)
			while (goro_chan_len(fifo_ch) < (size_t)i + 1)
				goro_yield();
		else
			wait_queued(fifo_ch, true, (int)(i - cap + 1));
	}
	for (long i = 0; i < FIFO_N; i++) {
		if (!goro_chan_recv(fifo_ch, &v) || v != i)
			fifo_bad = 1;
	}
	/* receivers: queue in order, get the values in order */
	for (long i = 0; i < FIFO_N; i++) {
		go(fifo_receiver, NULL);
		wait_queued(fifo_ch, false, (int)i + 1);
	}
	/* one at a time, as the receivers record in turn */
	for (long i = 0; i < FIFO_N; i++) {
		goro_chan_send(fifo_ch, &i);
		while (__atomic_load_n(&fifo_recv_pos, __ATOMIC_SEQ_CST) <= i)
			goro_yield();
	}
	for (long i = 0; i < FIFO_N; i++)
		if (fifo_recv_order[i] != i)
			fifo_bad = 1;
}

TEST(fifo_blocked_unbuffered)
{
	ASSERT_EQ(0, goro_main(fifo_main, (void *)0L));
	ASSERT_EQ(0, fifo_bad);
	ASSERT_EQ(FIFO_N, fifo_recv_pos);
}

TEST(fifo_blocked_buffered)
{
	ASSERT_EQ(0, goro_main(fifo_main, (void *)4L));
	ASSERT_EQ(0, fifo_bad);
	ASSERT_EQ(FIFO_N, fifo_recv_pos);
}

/*
 * Many senders on both Ps: each sender's values arrive in the order it
 * sent them, and every value arrives once.
 */
#define MS_SENDERS	8
static struct goro_chan *ms_ch;

static void ms_sender(void *arg)
{
	long id = (long)arg, n = SANITIZED ? 2000 : 50000;

	for (long i = 0; i < n; i++) {
		long v = id << 32 | i;

		goro_chan_send(ms_ch, &v);
	}
}

static int ms_bad;

static void many_senders_main(void *arg)
{
	long next[MS_SENDERS] = { 0 }, n = SANITIZED ? 2000 : 50000, v;

	ms_ch = goro_chan_make(sizeof(long), (size_t)(long)arg);
	for (long i = 0; i < MS_SENDERS; i++)
		go(ms_sender, (void *)i);
	for (long k = 0; k < MS_SENDERS * n; k++) {
		if (!goro_chan_recv(ms_ch, &v)) {
			ms_bad = 1;
			return;
		}
		if ((v & 0xffffffff) != next[v >> 32]++)
			ms_bad = 1;
	}
	for (int i = 0; i < MS_SENDERS; i++)
		if (next[i] != n)
			ms_bad = 1;
}

TEST(fifo_per_sender_unbuffered)
{
	ASSERT_EQ(0, goro_main(many_senders_main, (void *)0L));
	ASSERT_EQ(0, ms_bad);
}

TEST(fifo_per_sender_buffered)
{
	ASSERT_EQ(0, goro_main(many_senders_main, (void *)7L));
	ASSERT_EQ(0, ms_bad);
}

/* ---------------------------------------------------------------------
 * Non-blocking operations on every kind of channel.
 * ------------------------------------------------------------------- */

static int nb_bad;
static struct goro_chan *nb_ch;
static int nb_peer_got;

static void nb_blocked_receiver(void *arg)
{
	long v;

	(void)arg;
	if (goro_chan_recv(nb_ch, &v) && v == 77)
		__atomic_store_n(&nb_peer_got, 1, __ATOMIC_SEQ_CST);
}

static void nb_blocked_sender(void *arg)
{
	long v = 88;

	(void)arg;
	goro_chan_send(nb_ch, &v);
}

static void nonblock_main(void *arg)
{
	struct goro_chan *u = goro_chan_make(sizeof(long), 0);
	struct goro_chan *b = goro_chan_make(sizeof(long), 2);
	long v = 5;

	(void)arg;
	/* nil */
	if (goro_chan_try_send(NULL, &v) || goro_chan_try_recv(NULL, &v) != 0)
		nb_bad |= 1;
	/* unbuffered, nobody waiting */
	if (goro_chan_try_send(u, &v) || goro_chan_try_recv(u, &v) != 0)
		nb_bad |= 2;
	/* unbuffered with a blocked receiver: try_send succeeds */
	nb_ch = u;
	go(nb_blocked_receiver, NULL);
	wait_queued(u, false, 1);
	if (!goro_chan_try_send(u, &(long){ 77 }))
		nb_bad |= 4;
	for (int i = 0; i < 100000 && !__atomic_load_n(&nb_peer_got,
						      __ATOMIC_SEQ_CST); i++)
		goro_yield();
	if (!__atomic_load_n(&nb_peer_got, __ATOMIC_SEQ_CST))
		nb_bad |= 8;
	/* unbuffered with a blocked sender: try_recv succeeds */
	go(nb_blocked_sender, NULL);
	wait_queued(u, true, 1);
	v = 0;
	if (goro_chan_try_recv(u, &v) != 1 || v != 88)
		nb_bad |= 16;
	/* buffered: empty, partial, full */
	if (goro_chan_try_recv(b, &v) != 0)
		nb_bad |= 32;
	if (!goro_chan_try_send(b, &(long){ 1 }) ||
	    !goro_chan_try_send(b, &(long){ 2 }))
		nb_bad |= 64;
	if (goro_chan_try_send(b, &(long){ 3 }))
		nb_bad |= 128;
	/* closed with data: drains, then -EPIPE and zero */
	goro_chan_close(b);
	if (goro_chan_try_recv(b, &v) != 1 || v != 1)
		nb_bad |= 256;
	if (goro_chan_try_recv(b, NULL) != 1)
		nb_bad |= 512;
	v = 99;
	if (goro_chan_try_recv(b, &v) != -EPIPE || v != 0)
		nb_bad |= 1024;
	goro_chan_close(u);
	v = 99;
	if (goro_chan_try_recv(u, &v) != -EPIPE || v != 0)
		nb_bad |= 2048;
	if (goro_chan_recv(u, &v) || v != 0)
		nb_bad |= 4096;
}

TEST(nonblocking_every_kind)
{
	ASSERT_EQ(0, goro_main(nonblock_main, NULL));
	ASSERT_EQ(0, nb_bad);
}

/*
 * A goroutine polling with try_recv/try_send on the only P lets the
 * peer it waits for run: the non-blocking operations are preemption
 * points (a static test has no preemptible text, so the sysmon's
 * signal only flags the poller).
 */
static void poll_sender(void *arg)
{
	goro_chan_send(arg, &(long){ 5 });
}

static void poll_receiver(void *arg)
{
	long v;

	goro_chan_recv(arg, &v);
}

static long poll_got;

static void poll_main(void *arg)
{
	struct goro_chan *c = goro_chan_make(sizeof(long), 0);
	long v = 0;

	(void)arg;
	goro_set_maxprocs(1);
	go(poll_sender, c);
	while (!goro_chan_try_recv(c, &v))
		;
	poll_got = v;
	go(poll_receiver, c);
	while (!goro_chan_try_send(c, &v))
		;
	poll_got += v;
	goro_chan_free(c);
}

TEST(polling_loop_lets_peer_run)
{
	ASSERT_EQ(0, goro_main(poll_main, NULL));
	ASSERT_EQ(10, poll_got);
}

/* ---------------------------------------------------------------------
 * Close
 * ------------------------------------------------------------------- */

#define CL_WAITERS	10
static struct goro_chan *cl_ch;
static int cl_zero_false;
static struct goro_waitgroup cl_wg;

static void cl_receiver(void *arg)
{
	char v[40];

	(void)arg;
	memset(v, 0xaa, sizeof(v));
	if (!goro_chan_recv(cl_ch, v)) {
		int zero = 1;

		for (size_t i = 0; i < sizeof(v); i++)
			zero &= v[i] == 0;
		if (zero)
			__atomic_add_fetch(&cl_zero_false, 1, __ATOMIC_SEQ_CST);
	}
	goro_waitgroup_done(&cl_wg);
}

static int cl_bad;

static void close_main(void *arg)
{
	struct goro_chan *b = goro_chan_make(sizeof(int), 4);
	int v;

	(void)arg;
	/* blocked receivers all wake with zero and false */
	cl_ch = goro_chan_make(40, 0);
	goro_waitgroup_add(&cl_wg, CL_WAITERS);
	for (int i = 0; i < CL_WAITERS; i++)
		go(cl_receiver, NULL);
	wait_queued(cl_ch, false, CL_WAITERS);
	goro_chan_close(cl_ch);
	goro_waitgroup_wait(&cl_wg);

	/* buffered: values sent before close are still received */
	for (int i = 1; i <= 3; i++)
		goro_chan_send(b, &i);
	goro_chan_close(b);
	if (goro_chan_len(b) != 3)
		cl_bad = 1;
	for (int i = 1; i <= 3; i++)
		if (!goro_chan_recv(b, &v) || v != i)
			cl_bad = 1;
	for (int i = 0; i < 3; i++) {
		v = 5;
		if (goro_chan_recv(b, &v) || v != 0)
			cl_bad = 1;
	}
}

TEST(close_wakes_receivers_and_drains)
{
	ASSERT_EQ(0, goro_main(close_main, NULL));
	ASSERT_EQ(CL_WAITERS, cl_zero_false);
	ASSERT_EQ(0, cl_bad);
}

static void send_closed_main(void *arg)
{
	struct goro_chan *c = goro_chan_make(4, 1);

	(void)arg;
	goro_chan_close(c);
	goro_chan_send(c, &(int){ 1 });
}

static void send_closed_child(void)
{
	goro_main(send_closed_main, NULL);
}

static void try_send_closed_main(void *arg)
{
	struct goro_chan *c = goro_chan_make(4, 0);

	(void)arg;
	goro_chan_close(c);
	goro_chan_try_send(c, &(int){ 1 });
}

static void try_send_closed_child(void)
{
	goro_main(try_send_closed_main, NULL);
}

static void close_closed_main(void *arg)
{
	struct goro_chan *c = goro_chan_make(4, 0);

	(void)arg;
	goro_chan_close(c);
	goro_chan_close(c);
}

static void close_closed_child(void)
{
	goro_main(close_closed_main, NULL);
}

static void close_nil_main(void *arg)
{
	(void)arg;
	goro_chan_close(NULL);
}

static void close_nil_child(void)
{
	goro_main(close_nil_main, NULL);
}

TEST(panics)
{
	expect_child(_metadata, send_closed_child, "panic: send on closed channel");
	expect_child(_metadata, try_send_closed_child, "panic: send on closed channel");
	expect_child(_metadata, close_closed_child, "panic: close of closed channel");
	expect_child(_metadata, close_nil_child, "panic: close of nil channel");
}

/* Blocked senders panic when the channel is closed under them. */
static struct goro_chan *bs_ch;

static void bs_sender(void *arg)
{
	(void)arg;
	goro_chan_send(bs_ch, &(int){ 1 });
}

static void blocked_sender_close_main(void *arg)
{
	(void)arg;
	bs_ch = goro_chan_make(sizeof(int), (size_t)(long)arg);
	for (int i = 0; i < 4 + (int)(long)arg; i++)
		go(bs_sender, NULL);
	wait_queued(bs_ch, true, 4);
	goro_chan_close(bs_ch);
	goro_sleep(1000000000);
}

static void blocked_sender_unbuf_child(void)
{
	goro_main(blocked_sender_close_main, (void *)0L);
}

static void blocked_sender_buf_child(void)
{
	goro_main(blocked_sender_close_main, (void *)2L);
}

TEST(close_panics_blocked_senders)
{
	expect_child(_metadata, blocked_sender_unbuf_child,
		     "panic: send on closed channel");
	expect_child(_metadata, blocked_sender_buf_child,
		     "panic: send on closed channel");
}

/* ---------------------------------------------------------------------
 * Nil channels block forever: with nothing else alive that is a
 * deadlock, reported with the goroutine's wait reason.
 * ------------------------------------------------------------------- */

static void nil_send_main(void *arg)
{
	(void)arg;
	goro_chan_send(NULL, &(int){ 1 });
}

static void nil_send_child(void)
{
	goro_main(nil_send_main, NULL);
}

static void nil_recv_main(void *arg)
{
	(void)arg;
	goro_chan_recv(NULL, NULL);
}

static void nil_recv_child(void)
{
	goro_main(nil_recv_main, NULL);
}

TEST(nil_channels_block_forever)
{
	expect_child(_metadata, nil_send_child,
		     "fatal error: all goroutines are asleep - deadlock!");
	expect_child(_metadata, nil_send_child, "chan send (nil chan)");
	expect_child(_metadata, nil_recv_child,
		     "fatal error: all goroutines are asleep - deadlock!");
	expect_child(_metadata, nil_recv_child, "chan receive (nil chan)");
}

TEST_HARNESS_MAIN
