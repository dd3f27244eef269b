// SPDX-License-Identifier: MIT
/*
 * net_uring: the io_uring poller's completion paths (netpoll_uring.c) -
 * multishot accept and provided-buffer receives - and what must not
 * change when they run: which paths the kernel and GORODEBUG select;
 * reads shorter than a buffer, reads spanning buffers, EOF and reset
 * after queued data, a deadline while a receive is armed; a socket
 * nobody reads (capped, then caught up); more connections than buffers
 * (netpollbufs=8) with every buffer back in the ring at the end;
 * connections queued beyond the listener's high-water mark; the peer's
 * address; accept under connect churn while the listener is closed, and
 * a close with accepted connections still queued (no fd leaks); EMFILE
 * reported by the multishot accept; and the TCP short-read shortcut
 * with data, EOF and reset behind a short read.  The behaviours hold
 * on every poller: under epoll/ and nocompl/ (GORODEBUG=netpollaccept=0,
 * netpollrecv=0: a kernel without the features) the same tests run the
 * readiness paths.
 */
#include <liburing.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/resource.h>

#include "kselftest_harness.h"
#include "net_test.h"

static int count_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

/* The listener every test below serves on, and its address. */
static int lfd;
static char laddr[64];

static void listen_lo(void)
{
	lfd = goro_net_listen("tcp4:127.0.0.1:0");
	CHECK_GE(lfd, 0);
	snprintf(laddr, sizeof(laddr), "tcp4:127.0.0.1:%d", bound_port(lfd));
}

/* A connected pair through lfd: *c dialed, *s accepted. */
static void pair(int *c, int *s)
{
	*c = goro_net_dial(laddr);
	CHECK_GE(*c, 0);
	*s = goro_accept(lfd, NULL, NULL);
	CHECK_GE(*s, 0);
}

/* Write len bytes of connection cid's pattern from offset off. */
static void write_pattern(int fd, unsigned long cid, size_t off, size_t len)
{
	char buf[16384];

	while (len) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);

		for (size_t i = 0; i < n; i++)
			buf[i] = (char)pattern(cid, off + i);
		CHECK_EQ((ssize_t)n, goro_write(fd, buf, n));
		off += n;
		len -= n;
	}
}

static bool check_pattern(const char *buf, unsigned long cid, size_t off,
			  size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)buf[i] != pattern(cid, off + i))
			return false;
	return true;
}

/* Every provided buffer is back in the ring once the CQEs are reaped
 * (no-op when the receives do not run). */
static void check_buffers_back(void)
{
	int32_t nfree = 0;
	uint32_t total = 0;

	for (int i = 0; i < 200; i++) {
		netpoll_uring_bufstat(&nfree, &total);
		if ((uint32_t)nfree == total)
			break;
		goro_sleep(5 * MS);
	}
	CHECK_EQ(total, (uint32_t)nfree);
}

/* ----------------------------------------------------------------- */

static int features = -1;

static void features_main(void *arg)
{
	(void)arg;
	listen_lo();	/* brings the poller up */
	features = netpoll_uring_features();
	CHECK_EQ(0, goro_close(lfd));
}

/* The paths expected from the kernel's opcodes (5.19: IORING_OP_SOCKET
 * with multishot accept; 6.0: SEND_ZC with multishot recv) and from
 * GORODEBUG: none under epoll or with the knobs at 0. */
static int expected_features(void)
{
	const char *dbg = getenv("GORODEBUG");
	struct io_uring_probe *p;
	int want = 0;

	if (strcmp(expected_poller(), "uring"))
		return 0;
	p = io_uring_get_probe();
	if (!p)
		return 0;
	if (io_uring_opcode_supported(p, IORING_OP_SOCKET) &&
	    !(dbg && strstr(dbg, "netpollaccept=0")))
		want |= 1;
	if (io_uring_opcode_supported(p, IORING_OP_SEND_ZC) &&
	    !(dbg && strstr(dbg, "netpollrecv=0")))
		want |= 2;
	io_uring_free_probe(p);
	return want;
}

TEST(completion_paths_follow_kernel_and_gorodebug)
{
	ASSERT_EQ(0, goro_main(features_main, NULL));
	ASSERT_CHECKS();
	TH_LOG("poller %s, multishot accept %s, provided-buffer recv %s",
	       expected_poller(), features & 1 ? "on" : "off",
	       features & 2 ? "on" : "off");
	ASSERT_EQ(expected_features(), features);
}

TEST(knobs_turn_completion_paths_off)
{
	gorodebug_add("netpollaccept=0");
	gorodebug_add("netpollrecv=0");
	ASSERT_EQ(0, goro_main(features_main, NULL));
	ASSERT_CHECKS();
	ASSERT_EQ(0, features);
}

/* ----------------------------------------------------------------- */

/*
 * Reads shorter than what one completion brought, reads that span
 * several buffers, and EOF after the data.  The reader blocks first,
 * so a receive is armed before the data comes.
 */
#define SPAN_BYTES	(200 * 1024)

static int span_c;

static void span_writer(void *arg)
{
	(void)arg;
	goro_sleep(10 * MS);
	/* 100-byte writes: one completion (and buffer) each, mostly */
	for (size_t off = 0; off < 1000; off += 100)
		write_pattern(span_c, 3, off, 100);
	goro_sleep(10 * MS);
	write_pattern(span_c, 3, 1000, SPAN_BYTES - 1000);
	CHECK_EQ(0, shutdown(span_c, SHUT_WR));
}

static void span_main(void *arg)
{
	static char buf[SPAN_BYTES];
	size_t got = 0;
	ssize_t n;
	int s;

	(void)arg;
	listen_lo();
	pair(&span_c, &s);
	go(span_writer, NULL);
	/* 7 bytes at a time: each buffer is read in pieces */
	while (got < 1000) {
		n = goro_read(s, buf + got, 7);
		CHECK(n > 0 && n <= 7);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	CHECK(check_pattern(buf, 3, 0, got));
	/* the rest in large reads, spanning buffers */
	while ((n = goro_read(s, buf + got, sizeof(buf) - got)) > 0)
		got += (size_t)n;
	CHECK_EQ(0, n);
	CHECK_EQ(SPAN_BYTES, got);
	CHECK(check_pattern(buf, 3, 0, got));
	CHECK_EQ(0, goro_read(s, buf, 1));	/* EOF stays */
	CHECK_EQ(0, goro_close(s));
	CHECK_EQ(0, goro_close(span_c));
	CHECK_EQ(0, goro_close(lfd));
	check_buffers_back();
}

TEST(short_reads_and_reads_spanning_buffers)
{
	ASSERT_EQ(0, goro_main(span_main, NULL));
	ASSERT_CHECKS();
}

/* The same without IORING_SETUP_COOP_TASKRUN (the kernel interrupts a
 * running M for its task work). */
TEST(short_reads_without_coop_taskrun)
{
	gorodebug_add("netpollcoop=0");
	ASSERT_EQ(0, goro_main(span_main, NULL));
	ASSERT_CHECKS();
}

/*
 * With IORING_SETUP_COOP_TASKRUN a receive completes in the task work
 * of the M that armed it when that M next enters the kernel.  Here the
 * M that armed it then spins in a goroutine that makes no syscall for
 * 300 ms, while another goroutine waits on the socket: the data must
 * still reach it soon - at the spinning M's next timer tick or
 * preemption signal - not when the spin ends.
 */
static int busy_s, busy_c;
static bool busy_stop;
static int64_t busy_lat;

static void busy_spinner(void *arg)
{
	char b;
	int64_t end;
	volatile unsigned long x = 0;

	(void)arg;
	/* arm the receive from this goroutine's M */
	CHECK_EQ(0, goro_set_deadline(busy_s, goro_nanotime() + 5 * MS,
				      GORO_DEADLINE_READ));
	CHECK_EQ(-ETIMEDOUT, goro_read(busy_s, &b, 1));
	CHECK_EQ(0, goro_set_deadline(busy_s, 0, GORO_DEADLINE_READ));
	end = goro_nanotime() + 300 * MS;
	while (goro_nanotime() < end &&
	       !__atomic_load_n(&busy_stop, __ATOMIC_ACQUIRE))
		x++;	/* the vDSO clock: no syscall */
}

static void busy_reader(void *arg)
{
	char b;
	int64_t t0;

	(void)arg;
	goro_sleep(20 * MS);	/* the spinner armed and spins */
	t0 = goro_nanotime();
	CHECK_EQ(1, goro_write(busy_c, "z", 1));
	CHECK_EQ(1, goro_read(busy_s, &b, 1));
	busy_lat = goro_nanotime() - t0;
	__atomic_store_n(&busy_stop, true, __ATOMIC_RELEASE);
}

static void busy_main(void *arg)
{
	static struct goro_waitgroup wg;

	(void)arg;
	goro_set_maxprocs(2);
	listen_lo();
	pair(&busy_c, &busy_s);
	goro_waitgroup_add(&wg, 1);
	go(busy_spinner, NULL);
	busy_reader(NULL);
	goro_sleep(10 * MS);
	CHECK_EQ(0, goro_close(busy_s));
	CHECK_EQ(0, goro_close(busy_c));
	CHECK_EQ(0, goro_close(lfd));
	(void)wg;
}

TEST(data_reaches_a_reader_while_the_arming_m_spins)
{
	ASSERT_EQ(0, goro_main(busy_main, NULL));
	ASSERT_CHECKS();
	TH_LOG("data read %lld us after the write", (long long)(busy_lat / 1000));
	ASSERT_LT(busy_lat, 100 * MS);
}

/* Data already received into buffers, then a reset: the data first,
 * then -ECONNRESET once, then EOF; no buffer kept. */
static void reset_main(void *arg)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	char buf[256];
	ssize_t n;
	int c, s;

	(void)arg;
	listen_lo();
	pair(&c, &s);
	/* a receive armed by a read that blocks */
	CHECK_EQ(0, goro_set_deadline(s, goro_nanotime() + 10 * MS,
				      GORO_DEADLINE_READ));
	CHECK_EQ(-ETIMEDOUT, goro_read(s, buf, sizeof(buf)));
	CHECK_EQ(0, goro_set_deadline(s, 0, GORO_DEADLINE_READ));
	write_pattern(c, 5, 0, 100);
	goro_sleep(20 * MS);	/* into a buffer (or the socket) */
	CHECK_EQ(0, setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	CHECK_EQ(0, goro_close(c));
	goro_sleep(20 * MS);
	CHECK_EQ(100, read_full(s, buf, 100));
	CHECK(check_pattern(buf, 5, 0, 100));
	n = goro_read(s, buf, sizeof(buf));
	CHECK_EQ(-ECONNRESET, n);
	CHECK_EQ(0, goro_read(s, buf, sizeof(buf)));
	CHECK_EQ(0, goro_close(s));
	CHECK_EQ(0, goro_close(lfd));
	check_buffers_back();
}

TEST(data_then_reset_then_eof)
{
	ASSERT_EQ(0, goro_main(reset_main, NULL));
	ASSERT_CHECKS();
}

/* ----------------------------------------------------------------- */

/*
 * A socket nobody reads while 4 MiB come: at most a few of the ring's
 * buffers stay with it (its receive is cancelled at the high-water
 * mark, the rest waits in the socket), another connection keeps
 * working meanwhile, and the reader then gets every byte in order.
 */
#define FLOOD_BYTES	(4L << 20)

static int flood_c;
static bool flood_written;
static uint32_t flood_queued;

static void flood_writer(void *arg)
{
	(void)arg;
	write_pattern(flood_c, 9, 0, FLOOD_BYTES);
	__atomic_store_n(&flood_written, true, __ATOMIC_RELEASE);
}

static void flood_main(void *arg)
{
	static char buf[65536];
	struct polldesc *pd;
	long got = 0;
	uint32_t queued = 0;
	ssize_t n;
	int s, c2, s2;

	(void)arg;
	listen_lo();
	pair(&flood_c, &s);
	pair(&c2, &s2);
	/* arm the receive: a read that times out */
	CHECK_EQ(0, goro_set_deadline(s, goro_nanotime() + 5 * MS,
				      GORO_DEADLINE_READ));
	CHECK_EQ(-ETIMEDOUT, goro_read(s, buf, 1));
	CHECK_EQ(0, goro_set_deadline(s, 0, GORO_DEADLINE_READ));
	go(flood_writer, NULL);
	goro_sleep(100 * MS);	/* the writer fills what it can */
	pd = pd_acquire(s);
	CHECK(pd != NULL);
	if (pd) {
		queued = __atomic_load_n(&pd->rqlen, __ATOMIC_RELAXED);
		pd_release(pd);
	}
	/* the cap acts when the poller sees the queue: CQEs posted
	 * before that may hold more, never the data of other sockets */
	flood_queued = queued;
	/* the other connection is not starved of buffers */
	write_pattern(c2, 11, 0, 1000);
	CHECK_EQ(1000, read_full(s2, buf, 1000));
	CHECK(check_pattern(buf, 11, 0, 1000));
	while (got < FLOOD_BYTES &&
	       (n = goro_read(s, buf, sizeof(buf))) > 0) {
		if (!check_pattern(buf, 9, (size_t)got, (size_t)n)) {
			check_fail(__LINE__, "flood byte", got, 0);
			break;
		}
		got += n;
	}
	CHECK_EQ(FLOOD_BYTES, got);
	while (!__atomic_load_n(&flood_written, __ATOMIC_ACQUIRE))
		goro_sleep(MS);
	CHECK_EQ(0, goro_close(s));
	CHECK_EQ(0, goro_close(flood_c));
	CHECK_EQ(0, goro_close(s2));
	CHECK_EQ(0, goro_close(c2));
	CHECK_EQ(0, goro_close(lfd));
	check_buffers_back();
}

TEST(unread_socket_is_capped_then_caught_up)
{
	ASSERT_EQ(0, goro_main(flood_main, NULL));
	ASSERT_CHECKS();
	TH_LOG("%u buffers were queued on the unread socket", flood_queued);
}

/* ----------------------------------------------------------------- */

/*
 * 8 provided buffers, 64 connections each echoing 30 messages of up
 * to 9 KiB: the receives run out of buffers all the time (-ENOBUFS,
 * then read(2) and one-shot polls) and every byte still comes through;
 * at the end all 8 buffers are back in the ring.
 */
#define EXH_CONNS	64
#define EXH_MSGS	30

static struct goro_waitgroup exh_wg;
static long exh_ok;

static void exh_echo(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[3000];
	ssize_t n;

	while ((n = goro_read(fd, buf, sizeof(buf))) > 0)
		if (goro_write(fd, buf, (size_t)n) != n)
			break;
	CHECK_EQ(0, n);
	CHECK_EQ(0, goro_close(fd));
}

static void exh_server(void *arg)
{
	int fd;

	(void)arg;
	while ((fd = goro_accept(lfd, NULL, NULL)) >= 0)
		go(exh_echo, (void *)(intptr_t)fd);
	CHECK_EQ(-ECANCELED, fd);
}

static void exh_client(void *arg)
{
	static char outs[EXH_CONNS][9216], ins[EXH_CONNS][9216];
	unsigned long cid = (unsigned long)arg;
	char *out = outs[cid], *in = ins[cid];
	size_t off = 0;
	int fd = goro_net_dial(laddr);

	CHECK_GE(fd, 0);
	for (int m = 0; fd >= 0 && m < EXH_MSGS; m++) {
		size_t len = 1 + (cid * 977 + (unsigned long)m * 3571) % 9216;

		for (size_t i = 0; i < len; i++)
			out[i] = (char)pattern(cid, off + i);
		CHECK_EQ((ssize_t)len, goro_write(fd, out, len));
		CHECK_EQ((ssize_t)len, read_full(fd, in, len));
		if (memcmp(in, out, len)) {
			check_fail(__LINE__, "echo differs", (long long)cid, m);
			break;
		}
		off += len;
	}
	if (fd >= 0) {
		CHECK_EQ(0, goro_close(fd));
		__atomic_add_fetch(&exh_ok, 1, __ATOMIC_RELAXED);
	}
	goro_waitgroup_done(&exh_wg);
}

static void exh_main(void *arg)
{
	int32_t nfree;
	uint32_t total;

	(void)arg;
	listen_lo();
	netpoll_uring_bufstat(&nfree, &total);
	CHECK(total == 0 || total == 8);
	go(exh_server, NULL);
	goro_waitgroup_add(&exh_wg, EXH_CONNS);
	for (long i = 0; i < EXH_CONNS; i++)
		go(exh_client, (void *)i);
	goro_waitgroup_wait(&exh_wg);
	CHECK_EQ(0, goro_close(lfd));
	goro_sleep(20 * MS);	/* the echo goroutines see EOF and close */
	check_buffers_back();
}

TEST(more_connections_than_buffers)
{
	gorodebug_add("netpollbufs=8");
	ASSERT_EQ(0, goro_main(exh_main, NULL));
	ASSERT_CHECKS();
	ASSERT_EQ(EXH_CONNS, exh_ok);
}

/* ----------------------------------------------------------------- */

/*
 * 300 connections arrive while the acceptor sleeps with a multishot
 * accept armed: more than the listener queues (URING_ACCQ_HIGH) - the
 * rest wait in the backlog - and every one is then accepted, answers,
 * and reports its peer's address.
 */
#define BURST	300

static int burst_c[BURST];

static void burst_main(void *arg)
{
	int first_c, first_s, nfd;
	char buf[4];

	(void)arg;
	CHECK_GE(raise_nofile(2 * BURST + 200), 2 * BURST + 200);
	listen_lo();
	pair(&first_c, &first_s);	/* the accept waited: armed */
	for (int i = 0; i < BURST; i++) {
		burst_c[i] = goro_net_dial(laddr);
		CHECK_GE(burst_c[i], 0);
	}
	goro_sleep(50 * MS);
	for (int i = 0; i < BURST; i++) {
		struct sockaddr_in peer, local;
		socklen_t plen = sizeof(peer), llen = sizeof(local);

		nfd = goro_accept(lfd, (struct sockaddr *)&peer, &plen);
		CHECK_GE(nfd, 0);
		if (nfd < 0)
			break;
		CHECK_EQ(sizeof(peer), plen);
		CHECK_EQ(AF_INET, peer.sin_family);
		/* connections come in order: the i-th dialed is accepted */
		CHECK_EQ(0, getsockname(burst_c[i], (struct sockaddr *)&local,
					&llen));
		CHECK_EQ(ntohs(local.sin_port), ntohs(peer.sin_port));
		CHECK_EQ(2, goro_write(nfd, "ok", 2));
		CHECK_EQ(0, goro_close(nfd));
	}
	for (int i = 0; i < BURST; i++) {
		CHECK_EQ(2, read_full(burst_c[i], buf, 2));
		CHECK_EQ(0, goro_close(burst_c[i]));
	}
	CHECK_EQ(0, goro_close(first_c));
	CHECK_EQ(0, goro_close(first_s));
	CHECK_EQ(0, goro_close(lfd));
}

TEST(connections_queued_beyond_high_water)
{
	ASSERT_EQ(0, goro_main(burst_main, NULL));
	ASSERT_CHECKS();
}

/* ----------------------------------------------------------------- */

/*
 * Accept under churn while the listener is closed: 8 dialers connect
 * and hang up in a loop, 2 acceptors accept and close; the listener's
 * close wakes both acceptors (-ECANCELED, or -EBADF for one that came
 * after), connections the kernel had accepted for us are closed, and
 * once the dialers stop no fd is left open.  Then a close with
 * connections queued and nobody accepting.
 */
static struct goro_waitgroup churn_wg;
static bool churn_stop;
static long churn_accepted;

static void churn_acceptor(void *arg)
{
	int fd;

	(void)arg;
	while ((fd = goro_accept(lfd, NULL, NULL)) >= 0) {
		__atomic_add_fetch(&churn_accepted, 1, __ATOMIC_RELAXED);
		CHECK_EQ(0, goro_close(fd));
	}
	CHECK(fd == -ECANCELED || fd == -EBADF);
	goro_waitgroup_done(&churn_wg);
}

static void churn_dialer(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&churn_stop, __ATOMIC_ACQUIRE)) {
		int fd = goro_net_dial(laddr);

		if (fd < 0) {
			/* refused once the listener is gone */
			CHECK(fd == -ECONNREFUSED || fd == -ECONNRESET);
			break;
		}
		CHECK_EQ(0, goro_close(fd));
	}
	goro_waitgroup_done(&churn_wg);
}

static int fds_before, fds_after, fds_after_queued;

static void churn_main(void *arg)
{
	int c[20];

	(void)arg;
	fds_before = count_fds();
	listen_lo();
	goro_waitgroup_add(&churn_wg, 10);
	go(churn_acceptor, NULL);
	go(churn_acceptor, NULL);
	for (int i = 0; i < 8; i++)
		go(churn_dialer, NULL);
	goro_sleep(100 * MS);
	CHECK_EQ(0, goro_close(lfd));
	__atomic_store_n(&churn_stop, true, __ATOMIC_RELEASE);
	goro_waitgroup_wait(&churn_wg);
	goro_sleep(20 * MS);	/* late CQEs close what they bring */
	fds_after = count_fds();

	/* queued and never accepted: closed with the listener */
	listen_lo();
	pair(&c[0], &c[1]);	/* the accept waited: armed */
	CHECK_EQ(0, goro_close(c[1]));
	for (int i = 1; i < 20; i++) {
		c[i] = goro_net_dial(laddr);
		CHECK_GE(c[i], 0);
	}
	goro_sleep(30 * MS);
	CHECK_EQ(0, goro_close(lfd));
	for (int i = 1; i < 20; i++) {
		char b;
		ssize_t n;

		/* the server side went away: EOF or reset, never a hang */
		CHECK_EQ(0, goro_set_deadline(c[i], goro_nanotime() +
					      2000 * MS, GORO_DEADLINE_READ));
		n = goro_read(c[i], &b, 1);
		CHECK(n == 0 || n == -ECONNRESET);
		CHECK_EQ(0, goro_close(c[i]));
	}
	CHECK_EQ(0, goro_close(c[0]));
	goro_sleep(20 * MS);
	fds_after_queued = count_fds();
}

TEST(accept_churn_during_listener_close)
{
	ASSERT_EQ(0, goro_main(churn_main, NULL));
	ASSERT_CHECKS();
	TH_LOG("%ld connections accepted; fds %d before, %d after, %d after "
	       "the queued close", churn_accepted, fds_before, fds_after,
	       fds_after_queued);
	ASSERT_LT(0, churn_accepted);
	/* the poller's own fds (ring or epoll + eventfd) come once */
	ASSERT_LE(fds_after, fds_before + 2);
	ASSERT_EQ(fds_after, fds_after_queued);
}

/* ----------------------------------------------------------------- */

/*
 * EMFILE from the multishot accept: the accept is armed while the fd
 * table is full (so the kernel fails the accept when the connection
 * comes, and ends the request); goro_accept reports -EMFILE after its
 * back-off, not in a spin, and accepts the connection once fds are
 * free again.
 */
static int emf_calls, emf_errors, emf_fd = -1;

static void emf_acceptor(void *arg)
{
	int r;

	do {
		r = goro_accept(lfd, NULL, NULL);
		emf_calls++;
		if (r == -EMFILE)
			emf_errors++;
	} while (r == -EMFILE && emf_calls < 100);
	emf_fd = r;
	tgate_done((struct tgate *)arg);
}

static void emf_main(void *arg)
{
	static struct tgate done;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct rlimit rl, old;
	int dups[64], ndup = 0, cfd;
	char b[2];

	(void)arg;
	listen_lo();
	sin.sin_port = htons((uint16_t)bound_port(lfd));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK_GE(cfd, 0);
	/* a limit the dups below can reach, set before the accept is
	 * armed (the kernel takes it when the request is prepared) */
	CHECK_EQ(0, getrlimit(RLIMIT_NOFILE, &old));
	rl = old;
	rl.rlim_cur = (rlim_t)(cfd + 32);
	CHECK_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	tgate_add(&done, 1);
	go(emf_acceptor, &done);
	goro_sleep(20 * MS);	/* it waits: EAGAIN, then the accept armed */
	while (ndup < 64 && (dups[ndup] = dup(0)) >= 0)
		ndup++;
	CHECK(ndup < 64);
	CHECK(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)) == 0 ||
	      errno == EINPROGRESS);
	goro_sleep(60 * MS);
	while (ndup > 0)
		close(dups[--ndup]);
	CHECK_EQ(0, setrlimit(RLIMIT_NOFILE, &old));
	tgate_wait(&done);
	CHECK_GE(emf_fd, 0);
	CHECK_GE(emf_errors, 1);
	if (emf_fd >= 0) {
		CHECK_EQ(2, goro_write(emf_fd, "hi", 2));
		usleep(10000);
		CHECK_EQ(2, read(cfd, b, 2));
		CHECK_EQ(0, goro_close(emf_fd));
	}
	close(cfd);
	CHECK_EQ(0, goro_close(lfd));
}

TEST(emfile_from_multishot_accept)
{
	ASSERT_EQ(0, goro_main(emf_main, NULL));
	ASSERT_CHECKS();
	TH_LOG("%d accept calls, %d EMFILE", emf_calls, emf_errors);
	/* 5+10+20+40 ms of back-off in 60 ms: a handful, never a spin */
	ASSERT_LE(emf_calls, 12);
}

/* ----------------------------------------------------------------- */

/*
 * The TCP short-read shortcut (net.c): after a read shorter than its
 * buffer the next read waits for an event instead of reading; data,
 * EOF and a reset that come after the short read each end that wait,
 * and EOF or reset already behind the data are seen at once (they end
 * the shortcut for the fd).  Runs the readiness path under epoll/ and
 * nocompl/, the receives otherwise.
 */
static int sr_c;

/* arg: what << 16 | fd (the fd passed by value: the main goroutine
 * reuses sr_c once it saw the effect, which TSan cannot connect). */
static void sr_later(void *arg)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	long what = (long)arg >> 16;
	int fd = (int)((long)arg & 0xffff);

	goro_sleep(20 * MS);
	if (what == 0) {
		CHECK_EQ(3, goro_write(fd, "abc", 3));
	} else if (what == 1) {
		CHECK_EQ(0, shutdown(fd, SHUT_WR));
	} else {
		CHECK_EQ(0, setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg,
				       sizeof(lg)));
		CHECK_EQ(0, goro_close(fd));
	}
}

static void sr_main(void *arg)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	char buf[64];
	int s;

	(void)arg;
	listen_lo();
	/* data, then EOF, then a reset, each after a short read */
	pair(&sr_c, &s);
	CHECK_EQ(2, goro_write(sr_c, "xy", 2));
	CHECK_EQ(2, goro_read(s, buf, sizeof(buf)));	/* short */
	go(sr_later, (void *)(long)sr_c);
	CHECK_EQ(3, goro_read(s, buf, sizeof(buf)));
	CHECK(!memcmp(buf, "abc", 3));
	go(sr_later, (void *)(1L << 16 | sr_c));
	CHECK_EQ(0, goro_read(s, buf, sizeof(buf)));
	CHECK_EQ(0, goro_close(s));
	CHECK_EQ(0, goro_close(sr_c));

	pair(&sr_c, &s);
	CHECK_EQ(2, goro_write(sr_c, "xy", 2));
	CHECK_EQ(2, goro_read(s, buf, sizeof(buf)));
	go(sr_later, (void *)(2L << 16 | sr_c));
	CHECK_EQ(-ECONNRESET, goro_read(s, buf, sizeof(buf)));
	CHECK_EQ(0, goro_close(s));

	/* EOF and reset already behind the data of a short read */
	pair(&sr_c, &s);
	CHECK_EQ(2, goro_write(sr_c, "xy", 2));
	CHECK_EQ(0, shutdown(sr_c, SHUT_WR));
	goro_sleep(10 * MS);
	CHECK_EQ(2, goro_read(s, buf, sizeof(buf)));
	CHECK_EQ(0, goro_read(s, buf, sizeof(buf)));
	CHECK_EQ(0, goro_close(s));
	CHECK_EQ(0, goro_close(sr_c));

	pair(&sr_c, &s);
	CHECK_EQ(2, goro_write(sr_c, "xy", 2));
	CHECK_EQ(0, setsockopt(sr_c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	CHECK_EQ(0, goro_close(sr_c));
	goro_sleep(10 * MS);
	{
		ssize_t n = goro_read(s, buf, sizeof(buf));

		/* the reset may discard what was not read yet */
		CHECK(n == 2 || n == -ECONNRESET);
		if (n == 2)
			CHECK_EQ(-ECONNRESET, goro_read(s, buf, sizeof(buf)));
	}
	CHECK_EQ(0, goro_close(s));
	CHECK_EQ(0, goro_close(lfd));
}

TEST(short_read_then_data_eof_reset)
{
	ASSERT_EQ(0, goro_main(sr_main, NULL));
	ASSERT_CHECKS();
}

TEST_HARNESS_MAIN
