// SPDX-License-Identifier: MIT
/*
 * net_echo: an echo server with one goroutine per connection and many
 * concurrent loopback clients, every byte checked - 10 000 connections
 * open at once when RLIMIT_NOFILE allows (fewer, with a message, when
 * it does not, and under the sanitizers) - and a few connections moving
 * megabytes each way at once, so that both sides fill their socket
 * buffers and wait for writability as well as readability.
 */
#include "kselftest_harness.h"
#include "net_test.h"

static int lfd;
static char addr[64];
static long nconns, nmsgs;
static struct goro_waitgroup wg_connected, wg_done;
static struct goro_chan *go_ahead;
static struct goro_chan *dial_slots;	/* bounds the SYNs in flight */
static long conns_ok, bytes_checked;

static void echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[8192];
	ssize_t n;

	while ((n = goro_read(fd, buf, sizeof(buf))) > 0)
		if (goro_write(fd, buf, (size_t)n) != n)
			break;
	CHECK_EQ(0, n);
	CHECK_EQ(0, goro_close(fd));
}

static void echo_server(void *arg)
{
	int fd;

	(void)arg;
	while ((fd = goro_accept(lfd, NULL, NULL)) >= 0)
		CHECK_EQ(0, go(echo_conn, (void *)(intptr_t)fd));
	CHECK_EQ(-ECANCELED, fd);
}

static void client(void *arg)
{
	unsigned long c = (unsigned long)arg, off = 0;
	char out[2048], in[2048];
	int fd, slot = 0;

	goro_chan_send(dial_slots, &slot);
	fd = goro_net_dial(addr);
	goro_chan_recv(dial_slots, &slot);
	CHECK_GE(fd, 0);
	goro_waitgroup_done(&wg_connected);
	goro_chan_recv(go_ahead, NULL);	/* until every client is connected */
	if (fd < 0)
		goto out;
	for (long m = 0; m < nmsgs; m++) {
		size_t len = 1 + (c * 31 + (unsigned long)m * 577) % sizeof(out);

		for (size_t i = 0; i < len; i++)
			out[i] = (char)pattern(c, off + i);
		CHECK_EQ(len, goro_write(fd, out, len));
		CHECK_EQ(len, read_full(fd, in, len));
		if (memcmp(in, out, len)) {
			check_fail(__LINE__, "echoed bytes differ", (long long)c, m);
			break;
		}
		off += len;
	}
	CHECK_EQ(0, goro_close(fd));
	__atomic_add_fetch(&conns_ok, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&bytes_checked, (long)off, __ATOMIC_RELAXED);
out:
	goro_waitgroup_done(&wg_done);
}

static void many_main(void *arg)
{
	(void)arg;
	lfd = goro_net_listen("tcp:127.0.0.1:0");
	CHECK_GE(lfd, 0);
	snprintf(addr, sizeof(addr), "tcp:127.0.0.1:%d", bound_port(lfd));
	go_ahead = goro_chan_make(0, 0);
	dial_slots = goro_chan_make(sizeof(int), 256);
	CHECK_EQ(0, go(echo_server, NULL));
	goro_waitgroup_add(&wg_connected, (int)nconns);
	goro_waitgroup_add(&wg_done, (int)nconns);
	for (long c = 0; c < nconns; c++)
		CHECK_EQ(0, go(client, (void *)c));
	goro_waitgroup_wait(&wg_connected);
	goro_chan_close(go_ahead);
	goro_waitgroup_wait(&wg_done);
	CHECK_EQ(0, goro_close(lfd));	/* the server's accept returns */
	goro_sleep(10 * MS);
}

/* Under qemu without KVM (the VM suite) this takes minutes, not the
 * harness's default 30 s. */
FIXTURE(echo) {};
FIXTURE_TEARDOWN(echo) {}

FIXTURE_SETUP(echo)
{
}

TEST_F_TIMEOUT(echo, 10000_connections, 500)
{
	long limit = raise_nofile(20100);

	nconns = (TSAN ? 200 : SANITIZED ? 2000 : 10000) / test_div();
	nmsgs = 3;
	/* two fds per connection (client and server), plus some */
	if (nconns * 2 + 100 > limit) {
		nconns = (limit - 100) / 2;
		TH_LOG("RLIMIT_NOFILE is %ld: %ld connections instead of 10000 "
		       "(raise the hard limit to 20100 for all)", limit, nconns);
	}
	ASSERT_GT(nconns, 10);
	ASSERT_EQ(0, goro_main(many_main, NULL));
	ASSERT_CHECKS();
	ASSERT_EQ(nconns, conns_ok);
	TH_LOG("%ld connections, %ld bytes echoed and checked", conns_ok,
	       bytes_checked);
}

/* ----------------------------------------------------------------- */

#define BIG_CONNS	4
#define BIG_BYTES	(SANITIZED ? (4L << 20) : (32L << 20))

static long big_ok;

struct big {
	int fd;
	unsigned long c;
};

static void big_reader(void *arg)
{
	struct big *b = arg;
	char buf[65536];
	long got = 0;
	ssize_t n;

	while (got < BIG_BYTES && (n = goro_read(b->fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if ((unsigned char)buf[i] != pattern(b->c, got + i)) {
				check_fail(__LINE__, "big stream byte", got + i, b->c);
				goto out;
			}
		got += n;
	}
	CHECK_EQ(BIG_BYTES, got);
	if (got == BIG_BYTES)
		__atomic_add_fetch(&big_ok, 1, __ATOMIC_RELAXED);
out:
	goro_waitgroup_done(&wg_done);
}

static void big_writer(void *arg)
{
	struct big *b = arg;
	char buf[100000];	/* not a multiple of the socket buffer */
	long sent = 0;

	while (sent < BIG_BYTES) {
		size_t len = sizeof(buf);

		if ((long)len > BIG_BYTES - sent)
			len = (size_t)(BIG_BYTES - sent);
		for (size_t i = 0; i < len; i++)
			buf[i] = (char)pattern(b->c, sent + i);
		if (goro_write(b->fd, buf, len) != (ssize_t)len) {
			check_fail(__LINE__, "big write", sent, b->c);
			break;
		}
		sent += (long)len;
	}
	goro_waitgroup_done(&wg_done);
}

static void big_main(void *arg)
{
	static struct big bigs[BIG_CONNS];

	(void)arg;
	lfd = goro_net_listen("tcp:127.0.0.1:0");
	CHECK_GE(lfd, 0);
	snprintf(addr, sizeof(addr), "tcp:127.0.0.1:%d", bound_port(lfd));
	CHECK_EQ(0, go(echo_server, NULL));
	goro_waitgroup_add(&wg_done, 2 * BIG_CONNS);
	for (int i = 0; i < BIG_CONNS; i++) {
		bigs[i].c = (unsigned long)i + 7;
		bigs[i].fd = goro_net_dial(addr);
		CHECK_GE(bigs[i].fd, 0);
		CHECK_EQ(0, go(big_reader, &bigs[i]));
		CHECK_EQ(0, go(big_writer, &bigs[i]));
	}
	goro_waitgroup_wait(&wg_done);
	for (int i = 0; i < BIG_CONNS; i++)
		CHECK_EQ(0, goro_close(bigs[i].fd));
	CHECK_EQ(0, goro_close(lfd));
	goro_sleep(10 * MS);
}

TEST_F_TIMEOUT(echo, big_streams_both_ways, 300)
{
	ASSERT_EQ(0, goro_main(big_main, NULL));
	ASSERT_CHECKS();
	ASSERT_EQ(BIG_CONNS, big_ok);
}

TEST_HARNESS_MAIN
