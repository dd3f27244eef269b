// SPDX-License-Identifier: MIT
/*
 * net_api: the I/O API one behaviour at a time - which poller runs, a
 * pipe attached with goro_fd_attach, addresses (TCP over IPv4 and IPv6,
 * Unix sockets, bad strings), a goroutine waiting for I/O is not a
 * deadlock, half-close, peer reset, EOF mid-message, read and write
 * deadlines, close while blocked, accept blocked during shutdown and fd
 * exhaustion on accept, I/O reaching a P kept busy, io_uring refused
 * by seccomp (epoll takes over), and the idle M waiting for I/O in
 * goro.ko's M_PARK when the module is there (NETPOLL).  Every test
 * also runs under epoll/ with GORODEBUG=netpoll=epoll.
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "net_test.h"

/* ----------------------------------------------------------------- */

static const char *poller;

static void poller_main(void *arg)
{
	int fds[2];

	(void)arg;
	CHECK_EQ(0, pipe(fds));
	CHECK_EQ(0, goro_fd_attach(fds[0]));
	poller = netpoll_name();
	CHECK_EQ(0, goro_close(fds[0]));
	close(fds[1]);
}

TEST(poller_is_the_expected_one)
{
	ASSERT_EQ(0, goro_main(poller_main, NULL));
	ASSERT_CHECKS();
	ASSERT_NE(NULL, poller);
	TH_LOG("poller %s", poller);
	ASSERT_STREQ(expected_poller(), poller);
}

/* GORODEBUG=netpoll= takes names (and numbers: 0 auto, 1 uring, 2
 * epoll); a bad value warns and keeps auto. */
TEST(gorodebug_netpoll_names)
{
	setenv("GORODEBUG", "netpoll=uring", 1);
	ASSERT_EQ(0, goro_main(poller_main, NULL));
	ASSERT_CHECKS();
	unsetenv("GORODEBUG");
	ASSERT_STREQ(expected_poller(), poller);
	ASSERT_EQ(NETPOLL_URING, debug_netpoll);
	debug_netpoll = 0;
	setenv("GORODEBUG", "netpoll=2", 1);
	parsedebugvars();
	ASSERT_EQ(NETPOLL_EPOLL, debug_netpoll);
	debug_netpoll = 0;
	setenv("GORODEBUG", "netpoll=kqueue", 1);
	parsedebugvars();	/* prints a warning */
	ASSERT_EQ(NETPOLL_AUTO, debug_netpoll);
}

/* io_uring refused (as by a container's seccomp profile, or
 * kernel.io_uring_disabled=2): the runtime falls back to epoll, and I/O
 * works.  Each TEST runs in its own child, so the filter stays there. */
static void refused_main(void *arg)
{
	int sv[2];
	char c = 0;

	(void)arg;
	CHECK_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	CHECK_EQ(0, goro_fd_attach(sv[0]));
	CHECK_EQ(0, goro_fd_attach(sv[1]));
	poller = netpoll_name();
	CHECK_EQ(1, goro_write(sv[1], "q", 1));
	CHECK_EQ(1, goro_read(sv[0], &c, 1));
	CHECK_EQ('q', c);
	CHECK_EQ(0, goro_close(sv[0]));
	CHECK_EQ(0, goro_close(sv[1]));
}

TEST(io_uring_refused_falls_back_to_epoll)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = 4, .filter = f };

	ASSERT_EQ(0, prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
	ASSERT_EQ(0, syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
	ASSERT_EQ(-1, syscall(__NR_io_uring_setup, 8, NULL));
	ASSERT_EQ(EPERM, errno);
	ASSERT_EQ(0, goro_main(refused_main, NULL));
	ASSERT_CHECKS();
	ASSERT_STREQ("epoll", poller);
}

/* ----------------------------------------------------------------- */

static int pipefds[2];

static void pipe_writer(void *arg)
{
	(void)arg;
	goro_sleep(10 * MS);
	CHECK_EQ(5, goro_write(pipefds[1], "hello", 5));
	goro_sleep(5 * MS);
	CHECK_EQ(0, goro_close(pipefds[1]));
}

static void pipe_main(void *arg)
{
	char buf[16];
	int flags;

	(void)arg;
	CHECK_EQ(0, pipe(pipefds));
	CHECK_EQ(-EBADF, goro_read(pipefds[0], buf, sizeof(buf)));
	CHECK_EQ(-EBADF, goro_close(pipefds[0]));
	CHECK_EQ(0, goro_fd_attach(pipefds[0]));
	CHECK_EQ(-EEXIST, goro_fd_attach(pipefds[0]));
	CHECK_EQ(-EBADF, goro_fd_attach(-1));
	CHECK_EQ(0, goro_fd_attach(pipefds[1]));
	flags = fcntl(pipefds[0], F_GETFL);
	CHECK(flags & O_NONBLOCK);
	go(pipe_writer, NULL);
	/* blocks ~10 ms: the goroutine parks, the writer runs */
	CHECK_EQ(5, goro_read(pipefds[0], buf, sizeof(buf)));
	CHECK(!memcmp(buf, "hello", 5));
	CHECK_EQ(0, goro_read(pipefds[0], buf, 0));
	CHECK_EQ(0, goro_read(pipefds[0], buf, sizeof(buf)));	/* EOF */
	CHECK_EQ(0, goro_close(pipefds[0]));
	CHECK_EQ(-EBADF, goro_close(pipefds[0]));
	CHECK_EQ(-EBADF, goro_read(pipefds[0], buf, sizeof(buf)));
	CHECK_EQ(-EBADF, goro_write(pipefds[0], buf, 1));
	CHECK_EQ(-EBADF, goro_set_deadline(pipefds[0], 1, GORO_DEADLINE_READ));
}

TEST(pipe_attach_read_write_close)
{
	ASSERT_EQ(0, goro_main(pipe_main, NULL));
	ASSERT_CHECKS();
}

/* ----------------------------------------------------------------- */

static void echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	ssize_t n;

	while ((n = goro_read(fd, buf, sizeof(buf))) > 0)
		if (goro_write(fd, buf, (size_t)n) != n)
			break;
	goro_close(fd);
}

/* Accept until the listener is closed; -ECANCELED or -EBADF then. */
static struct tgate server_gate;

static void echo_server(void *arg)
{
	int lfd = (int)(intptr_t)arg, fd;

	while ((fd = goro_accept(lfd, NULL, NULL)) >= 0)
		go(echo_conn, (void *)(intptr_t)fd);
	CHECK(fd == -ECANCELED || fd == -EBADF);
	tgate_done(&server_gate);
}

static void start_server(int lfd)
{
	tgate_add(&server_gate, 1);
	go(echo_server, (void *)(intptr_t)lfd);
}

/* Close the listener and wait for its server to see it: until then the
 * next socket could reuse the fd number under its goro_accept. */
static void stop_server(int lfd)
{
	CHECK_EQ(0, goro_close(lfd));
	tgate_wait(&server_gate);
}

/* Dial addr, exchange a message through the echo server. */
static void roundtrip(const char *addr)
{
	char buf[64];
	int fd = goro_net_dial(addr);

	CHECK_GE(fd, 0);
	if (fd < 0)
		return;
	CHECK_EQ(11, goro_write(fd, "hello world", 11));
	CHECK_EQ(11, read_full(fd, buf, 11));
	CHECK(!memcmp(buf, "hello world", 11));
	CHECK_EQ(0, goro_close(fd));
}

static void addr_main(void *arg)
{
	static const char *bad[] = {
		"", "tcp", "tcp:", "tcp:127.0.0.1", "tcp:127.0.0.1:", "tcp:1.2.3:80",
		"tcp:127.0.0.1:65536", "tcp:127.0.0.1:-1", "tcp:127.0.0.1:8x",
		"tcp4:[::1]:80", "tcp6:127.0.0.1:80", "udp:127.0.0.1:80",
		"unix:", "tcp:example.com:80",
	};
	char addr[128];
	int lfd;

	(void)arg;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (goro_net_listen(bad[i]) != -EINVAL ||
		    goro_net_dial(bad[i]) != -EINVAL)
			check_fail(__LINE__, bad[i], i, 0);
	CHECK_EQ(-EINVAL, goro_net_listen(NULL));

	lfd = goro_net_listen("tcp:127.0.0.1:0");
	CHECK_GE(lfd, 0);
	start_server(lfd);
	snprintf(addr, sizeof(addr), "tcp:127.0.0.1:%d", bound_port(lfd));
	roundtrip(addr);
	snprintf(addr, sizeof(addr), "tcp4:localhost:%d", bound_port(lfd));
	roundtrip(addr);
	snprintf(addr, sizeof(addr), "tcp::%d", bound_port(lfd));
	roundtrip(addr);	/* empty host dials loopback */
	stop_server(lfd);

	lfd = goro_net_listen("tcp6:[::1]:0");
	if (lfd == -EADDRNOTAVAIL || lfd == -EAFNOSUPPORT) {
		printf("# no IPv6 loopback: skipping tcp6\n");
	} else {
		CHECK_GE(lfd, 0);
		start_server(lfd);
		snprintf(addr, sizeof(addr), "tcp:[::1]:%d", bound_port(lfd));
		roundtrip(addr);
		stop_server(lfd);
	}

	snprintf(addr, sizeof(addr), "unix:@goro-net-api-%d", getpid());
	lfd = goro_net_listen(addr);
	CHECK_GE(lfd, 0);
	CHECK_EQ(-EADDRINUSE, goro_net_listen(addr));
	start_server(lfd);
	roundtrip(addr);
	stop_server(lfd);

	snprintf(addr, sizeof(addr), "unix:/tmp/goro-net-api-%d.sock", getpid());
	unlink(addr + 5);
	lfd = goro_net_listen(addr);
	CHECK_GE(lfd, 0);
	start_server(lfd);
	roundtrip(addr);
	stop_server(lfd);
	unlink(addr + 5);
	CHECK_EQ(-ENOENT, goro_net_dial(addr));

	/* nobody listens there any more */
	lfd = goro_net_listen("tcp:127.0.0.1:0");
	CHECK_GE(lfd, 0);
	snprintf(addr, sizeof(addr), "tcp:127.0.0.1:%d", bound_port(lfd));
	CHECK_EQ(0, goro_close(lfd));
	CHECK_EQ(-ECONNREFUSED, goro_net_dial(addr));
}

TEST(addresses_tcp4_tcp6_unix)
{
	ASSERT_EQ(0, goro_main(addr_main, NULL));
	ASSERT_CHECKS();
}

/* ----------------------------------------------------------------- */

/* A plain thread (not a goroutine) answers after a while: meanwhile
 * every goroutine is blocked, on I/O, which is no deadlock. */
static int thread_fd;

static void *late_writer(void *arg)
{
	(void)arg;
	usleep(100 * 1000);
	if (write(thread_fd, "x", 1) != 1)
		abort();
	return NULL;
}

static int64_t waited;

static void nodeadlock_main(void *arg)
{
	int sv[2];
	pthread_t th;
	char c = 0;
	int64_t t0;

	(void)arg;
	CHECK_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	CHECK_EQ(0, goro_fd_attach(sv[0]));
	thread_fd = sv[1];
	CHECK_EQ(0, pthread_create(&th, NULL, late_writer, NULL));
	t0 = goro_nanotime();
	CHECK_EQ(1, goro_read(sv[0], &c, 1));
	waited = goro_nanotime() - t0;
	CHECK_EQ('x', c);
	pthread_join(th, NULL);
	CHECK_EQ(0, goro_close(sv[0]));
	close(sv[1]);
}

TEST(io_wait_is_not_a_deadlock)
{
	ASSERT_EQ(0, goro_main(nodeadlock_main, NULL));
	ASSERT_CHECKS();
	ASSERT_GE(waited, 90 * MS);
}

/*
 * Which way the idle M waited for that I/O: with goro.ko (the VM suite;
 * not GORODEBUG=kmod=0 or kmodnetpoll=0) the poller's fd is bound by
 * GORO_IOC_NETPOLL and the M parked in M_PARK until the write made the
 * fd readable, which the park's GORO_PARK_IO result counts; otherwise
 * it blocked in the poller and nothing is counted.
 */
TEST(io_wait_path_matches_module)
{
	const char *dbg = getenv("GORODEBUG");
	bool want = access("/dev/goro", R_OK | W_OK) == 0 &&
		    !(dbg && (strstr(dbg, "kmod=0") ||
			      strstr(dbg, "kmodnetpoll=0")));

	ASSERT_EQ(0, goro_main(nodeadlock_main, NULL));
	ASSERT_CHECKS();
	ASSERT_GE(waited, 90 * MS);
	ASSERT_EQ(want, __atomic_load_n(&kmod_netpoll, __ATOMIC_ACQUIRE));
	if (want) {
		ASSERT_LT(0, kmod_netpoll_ioparks);
	} else {
		ASSERT_EQ(0, kmod_netpoll_ioparks);
	}
	TH_LOG("%s, %llu parks ended by I/O", want ? "M_PARK+NETPOLL" :
	       "blocking poll", (unsigned long long)kmod_netpoll_ioparks);
}

/* One P kept busy by a goroutine that only yields: I/O readiness must
 * still reach the waiting goroutine - through an idle M blocked in the
 * poller, or the busy M's occasional poll (Go's sysmon does that) - or
 * the yielder would spin for the whole 5 s. */
static bool io_arrived;

static void io_waiter(void *arg)
{
	char c;

	(void)arg;
	CHECK_EQ(1, goro_read(*(int *)arg, &c, 1));
	__atomic_store_n(&io_arrived, true, __ATOMIC_RELEASE);
}

static int busy_fd;

static void busy_main(void *arg)
{
	int sv[2];
	pthread_t th;
	int64_t t0;

	(void)arg;
	goro_set_maxprocs(1);
	CHECK_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	CHECK_EQ(0, goro_fd_attach(sv[0]));
	busy_fd = sv[0];
	thread_fd = sv[1];
	CHECK_EQ(0, go(io_waiter, &busy_fd));
	goro_yield();	/* let it block */
	CHECK_EQ(0, pthread_create(&th, NULL, late_writer, NULL));
	t0 = goro_nanotime();
	while (!__atomic_load_n(&io_arrived, __ATOMIC_ACQUIRE) &&
	       goro_nanotime() - t0 < 5000 * MS)
		goro_yield();
	waited = goro_nanotime() - t0;
	CHECK(__atomic_load_n(&io_arrived, __ATOMIC_ACQUIRE));
	pthread_join(th, NULL);
	CHECK_EQ(0, goro_close(sv[0]));
	close(sv[1]);
}

TEST(io_reaches_a_busy_p)
{
	ASSERT_EQ(0, goro_main(busy_main, NULL));
	ASSERT_CHECKS();
	TH_LOG("I/O seen %lld ms after the writer started",
	       (long long)(waited / MS));
	ASSERT_LT(waited, 1000 * MS);
}

/* ----------------------------------------------------------------- */

static int lfd_shared;
static char shared_addr[128];

static void listen_loopback(void)
{
	lfd_shared = goro_net_listen("tcp:127.0.0.1:0");
	CHECK_GE(lfd_shared, 0);
	snprintf(shared_addr, sizeof(shared_addr), "tcp:127.0.0.1:%d",
		 bound_port(lfd_shared));
}

/* Server side of half_close: read to EOF, then answer with the count. */
static void halfclose_server(void *arg)
{
	int fd = goro_accept(lfd_shared, NULL, NULL);
	char buf[1000];
	long total = 0;
	ssize_t n;

	(void)arg;
	CHECK_GE(fd, 0);
	while ((n = goro_read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if ((unsigned char)buf[i] != pattern(1, total + i)) {
				check_fail(__LINE__, "half-close byte", total + i, 0);
				break;
			}
		total += n;
	}
	CHECK_EQ(0, n);
	CHECK_EQ(100000, total);
	CHECK_EQ(sizeof(total), goro_write(fd, &total, sizeof(total)));
	CHECK_EQ(0, goro_close(fd));
}

static void halfclose_main(void *arg)
{
	static char buf[100000];
	long got = 0;
	int fd;

	(void)arg;
	listen_loopback();
	go(halfclose_server, NULL);
	fd = goro_net_dial(shared_addr);
	CHECK_GE(fd, 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)pattern(1, i);
	CHECK_EQ(sizeof(buf), goro_write(fd, buf, sizeof(buf)));
	CHECK_EQ(0, shutdown(fd, SHUT_WR));
	/* our read side still works after the write side closed */
	CHECK_EQ(sizeof(got), read_full(fd, &got, sizeof(got)));
	CHECK_EQ(100000, got);
	CHECK_EQ(0, goro_read(fd, buf, 1));
	CHECK_EQ(0, goro_close(fd));
	CHECK_EQ(0, goro_close(lfd_shared));
}

TEST(half_close)
{
	ASSERT_EQ(0, goro_main(halfclose_main, NULL));
	ASSERT_CHECKS();
}

/*
 * goro_close must let the socket go at once, however busy its poll is.
 * The io_uring poller once removed the fd's multishot poll with
 * POLL_REMOVE, which fails with -EALREADY when it meets a wake-up of
 * the poll being processed (here: the ACK of the reply, just as the
 * server closes): the poll stayed armed with its file reference, the
 * socket never sent its FIN and the client waited for EOF forever (1
 * connection in ~2000 on this loop; half_close hung the same way).
 * Each connection: the client sends 32 KiB and half-closes, the server
 * reads to EOF, replies and closes; the client must see the reply,
 * then EOF within 2 s.  Both Ps, 8 clients, up to 1 s or 2000 each.
 */
#define CHURN_CLIENTS	8
#define CHURN_CONNS	2000

static int churn_lfd, churn_eof_lost, churn_done;
static char churn_addr[128];
static struct goro_waitgroup churn_wg;

static void churn_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	long total = 0;
	ssize_t n;

	while ((n = goro_read(fd, buf, sizeof(buf))) > 0)
		total += n;
	CHECK_EQ(0, n);
	CHECK_EQ(sizeof(total), goro_write(fd, &total, sizeof(total)));
	CHECK_EQ(0, goro_close(fd));
}

static void churn_acceptor(void *arg)
{
	int fd;

	(void)arg;
	while ((fd = goro_accept(churn_lfd, NULL, NULL)) >= 0)
		go(churn_conn, (void *)(intptr_t)fd);
	CHECK_EQ(-ECANCELED, fd);
}

static void churn_client(void *arg)
{
	static char out[32 * 1024];
	int64_t stop = *(int64_t *)arg;
	long got;
	char c;
	int fd;

	for (int i = 0; i < CHURN_CONNS && goro_nanotime() < stop; i++) {
		fd = goro_net_dial(churn_addr);
		CHECK_GE(fd, 0);
		if (fd < 0)
			break;
		CHECK_EQ(sizeof(out), goro_write(fd, out, sizeof(out)));
		CHECK_EQ(0, shutdown(fd, SHUT_WR));
		CHECK_EQ(sizeof(got), read_full(fd, &got, sizeof(got)));
		CHECK_EQ(sizeof(out), got);
		CHECK_EQ(0, goro_set_deadline(fd, goro_nanotime() + 2000 * MS,
					      GORO_DEADLINE_READ));
		if (goro_read(fd, &c, 1) != 0)
			__atomic_add_fetch(&churn_eof_lost, 1, __ATOMIC_RELAXED);
		CHECK_EQ(0, goro_close(fd));
		__atomic_add_fetch(&churn_done, 1, __ATOMIC_RELAXED);
	}
	goro_waitgroup_done(&churn_wg);
}

static void churn_main(void *arg)
{
	int64_t stop = goro_nanotime() + 1000 * MS;

	(void)arg;
	churn_lfd = goro_net_listen("tcp:127.0.0.1:0");
	CHECK_GE(churn_lfd, 0);
	snprintf(churn_addr, sizeof(churn_addr), "tcp:127.0.0.1:%d",
		 bound_port(churn_lfd));
	go(churn_acceptor, NULL);
	goro_waitgroup_add(&churn_wg, CHURN_CLIENTS);
	for (int i = 0; i < CHURN_CLIENTS; i++)
		go(churn_client, &stop);
	goro_waitgroup_wait(&churn_wg);
	CHECK_EQ(0, goro_close(churn_lfd));
}

TEST(close_sends_fin_under_churn)
{
	ASSERT_EQ(0, goro_main(churn_main, NULL));
	ASSERT_CHECKS();
	TH_LOG("%d connections, %d without EOF", churn_done, churn_eof_lost);
	ASSERT_EQ(0, churn_eof_lost);
	ASSERT_GE(churn_done, CHURN_CLIENTS);
}

/* ----------------------------------------------------------------- */

/*
 * Accepted sockets skip pd_attach's F_GETFL and fstat (accept4 made them
 * non-blocking): each must still come out non-blocking, close-on-exec,
 * attached, and known to be a socket (is_sock: writes go through
 * send(MSG_NOSIGNAL)); a write to the reset peer fails with an error.
 * 64 dialers connect at once.
 */
#define MANY_CONNS	64

static int many_accepted;

static void many_server(void *arg)
{
	char buf[16];
	struct polldesc *pd;
	ssize_t n = 0;
	int fd, fl;

	(void)arg;
	for (int i = 0; i < MANY_CONNS; i++) {
		fd = goro_accept(lfd_shared, NULL, NULL);
		CHECK_GE(fd, 0);
		if (fd < 0)
			break;
		fl = fcntl(fd, F_GETFL);
		CHECK(fl >= 0 && (fl & O_NONBLOCK));
		CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		CHECK_EQ(-EEXIST, goro_fd_attach(fd));
		pd = pd_acquire(fd);
		CHECK(pd && pd->is_sock);
		if (pd)
			pd_release(pd);
		/* the dialer sent one byte, then reset the connection */
		CHECK_EQ(1, read_full(fd, buf, 1));
		n = goro_read(fd, buf, 1);
		CHECK(n == 0 || n == -ECONNRESET);
		/* the reset is reported once (ECONNRESET), then EPIPE */
		for (int k = 0; k < 4; k++) {
			n = goro_write(fd, "x", 1);
			if (n == -EPIPE)
				break;
			CHECK(n == 1 || n == -ECONNRESET);
		}
		CHECK_EQ(-EPIPE, n);
		CHECK_EQ(0, goro_close(fd));
		many_accepted++;
	}
}

static void many_dialer(void *arg)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int fd = goro_net_dial(shared_addr);

	(void)arg;
	CHECK_GE(fd, 0);
	if (fd < 0)
		return;
	CHECK_EQ(1, goro_write(fd, "a", 1));
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	CHECK_EQ(0, goro_close(fd));
}

static void many_main(void *arg)
{
	(void)arg;
	listen_loopback();
	for (int i = 0; i < MANY_CONNS; i++)
		go(many_dialer, NULL);
	many_server(NULL);
	CHECK_EQ(MANY_CONNS, many_accepted);
	CHECK_EQ(0, goro_close(lfd_shared));
}

TEST(accept_many_concurrent_sockets)
{
	ASSERT_EQ(0, goro_main(many_main, NULL));
	ASSERT_CHECKS();
}

/* ----------------------------------------------------------------- */

static void reset_main(void *arg)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	char buf[64];
	ssize_t n;
	int c, s;

	(void)arg;
	listen_loopback();
	c = goro_net_dial(shared_addr);
	CHECK_GE(c, 0);
	s = goro_accept(lfd_shared, NULL, NULL);
	CHECK_GE(s, 0);
	/* EOF mid-message: 5 of the 10 bytes announced, then FIN */
	CHECK_EQ(5, goro_write(c, "12345", 5));
	CHECK_EQ(0, shutdown(c, SHUT_WR));
	CHECK_EQ(5, read_full(s, buf, 10));
	CHECK_EQ(0, goro_read(s, buf, 10));
	/* peer reset: linger 0 turns close into RST */
	CHECK_EQ(0, setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	CHECK_EQ(0, goro_close(c));
	goro_sleep(5 * MS);
	n = goro_write(s, "abc", 3);
	CHECK(n == -EPIPE || n == -ECONNRESET);
	n = goro_write(s, "abc", 3);
	CHECK(n == -EPIPE || n == -ECONNRESET);
	CHECK_EQ(0, goro_close(s));
	CHECK_EQ(0, goro_close(lfd_shared));
}

TEST(eof_mid_message_and_peer_reset)
{
	ASSERT_EQ(0, goro_main(reset_main, NULL));
	ASSERT_CHECKS();
}

/* A reader blocked when the RST comes gets -ECONNRESET. */
static int reset_c;

static void reset_later(void *arg)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	(void)arg;
	goro_sleep(10 * MS);
	CHECK_EQ(0, setsockopt(reset_c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	CHECK_EQ(0, goro_close(reset_c));
}

static void reset_blocked_main(void *arg)
{
	char buf[8];
	int s;

	(void)arg;
	listen_loopback();
	reset_c = goro_net_dial(shared_addr);
	CHECK_GE(reset_c, 0);
	s = goro_accept(lfd_shared, NULL, NULL);
	CHECK_GE(s, 0);
	go(reset_later, NULL);
	CHECK_EQ(-ECONNRESET, goro_read(s, buf, sizeof(buf)));
	CHECK_EQ(0, goro_close(s));
	CHECK_EQ(0, goro_close(lfd_shared));
}

TEST(blocked_reader_sees_peer_reset)
{
	ASSERT_EQ(0, goro_main(reset_blocked_main, NULL));
	ASSERT_CHECKS();
}

/* ----------------------------------------------------------------- */

static int64_t dl_elapsed[4];

static void deadline_main(void *arg)
{
	char buf[8];
	int64_t t0;
	int c, s;

	(void)arg;
	listen_loopback();
	c = goro_net_dial(shared_addr);
	s = goro_accept(lfd_shared, NULL, NULL);
	CHECK_GE(c, 0);
	CHECK_GE(s, 0);
	CHECK_EQ(-EINVAL, goro_set_deadline(s, 1, 0));
	CHECK_EQ(-EINVAL, goro_set_deadline(s, 1, 4));
	CHECK_EQ(-EINVAL, goro_set_deadline(s, -1, GORO_DEADLINE_READ));
	CHECK_EQ(-EBADF, goro_set_deadline(9999, 1, GORO_DEADLINE_READ));

	/* a deadline in 20 ms */
	t0 = goro_nanotime();
	CHECK_EQ(0, goro_set_deadline(s, t0 + 20 * MS, GORO_DEADLINE_READ));
	CHECK_EQ(-ETIMEDOUT, goro_read(s, buf, sizeof(buf)));
	dl_elapsed[0] = goro_nanotime() - t0;
	/* it stays expired */
	CHECK_EQ(-ETIMEDOUT, goro_read(s, buf, sizeof(buf)));
	/* writes have their own deadline */
	CHECK_EQ(1, goro_write(s, "w", 1));
	CHECK_EQ(1, goro_read(c, buf, 1));

	/* a deadline in the past fails at once */
	t0 = goro_nanotime();
	CHECK_EQ(0, goro_set_deadline(s, 1, GORO_DEADLINE_READ));
	CHECK_EQ(-ETIMEDOUT, goro_read(s, buf, sizeof(buf)));
	dl_elapsed[1] = goro_nanotime() - t0;

	/* cleared: data is read again */
	CHECK_EQ(0, goro_set_deadline(s, 0, GORO_DEADLINE_READ));
	CHECK_EQ(1, goro_write(c, "r", 1));
	CHECK_EQ(1, goro_read(s, buf, 1));
	CHECK_EQ('r', buf[0]);

	/* a far deadline that data beats */
	CHECK_EQ(0, goro_set_deadline(s, goro_nanotime() + 10000 * MS,
				      GORO_DEADLINE_READ));
	CHECK_EQ(1, goro_write(c, "s", 1));
	CHECK_EQ(1, goro_read(s, buf, 1));

	/* deadlines on accept */
	t0 = goro_nanotime();
	CHECK_EQ(0, goro_set_deadline(lfd_shared, t0 + 10 * MS,
				      GORO_DEADLINE_READ));
	CHECK_EQ(-ETIMEDOUT, goro_accept(lfd_shared, NULL, NULL));
	dl_elapsed[2] = goro_nanotime() - t0;

	CHECK_EQ(0, goro_close(c));
	CHECK_EQ(0, goro_close(s));
	CHECK_EQ(0, goro_close(lfd_shared));
}

TEST(read_deadlines)
{
	ASSERT_EQ(0, goro_main(deadline_main, NULL));
	ASSERT_CHECKS();
	ASSERT_GE(dl_elapsed[0], 20 * MS);
	ASSERT_LT(dl_elapsed[0], 2000 * MS);
	ASSERT_LT(dl_elapsed[1], 100 * MS);
	ASSERT_GE(dl_elapsed[2], 10 * MS);
}

/* A reader blocked with a far deadline; another goroutine moves the
 * deadline into the past: the reader wakes at once. */
static int dl_s;

static void deadline_mover(void *arg)
{
	(void)arg;
	goro_sleep(10 * MS);
	CHECK_EQ(0, goro_set_deadline(dl_s, 1, GORO_DEADLINE_READ));
}

static void write_deadline_main(void *arg)
{
	static char big[1 << 16];
	long total = 0;
	ssize_t n;
	int64_t t0;
	int c, sz = 4096;

	(void)arg;
	listen_loopback();
	c = goro_net_dial(shared_addr);
	dl_s = goro_accept(lfd_shared, NULL, NULL);
	CHECK_GE(c, 0);
	CHECK_GE(dl_s, 0);

	t0 = goro_nanotime();
	CHECK_EQ(0, goro_set_deadline(dl_s, t0 + 10000 * MS, GORO_DEADLINE_READ));
	go(deadline_mover, NULL);
	CHECK_EQ(-ETIMEDOUT, goro_read(dl_s, big, 1));
	dl_elapsed[0] = goro_nanotime() - t0;

	/* nobody reads c: writes fill the buffers, then time out */
	setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(dl_s, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	t0 = goro_nanotime();
	CHECK_EQ(0, goro_set_deadline(c, t0 + 30 * MS, GORO_DEADLINE_WRITE));
	while ((n = goro_write(c, big, sizeof(big))) > 0)
		total += n;
	dl_elapsed[1] = goro_nanotime() - t0;
	CHECK_EQ(-ETIMEDOUT, n);
	CHECK_GE(total, 1);
	/* the read side of c is untouched */
	CHECK_EQ(1, goro_write(dl_s, "z", 1));
	CHECK_EQ(1, goro_read(c, big, 1));
	CHECK_EQ(0, goro_close(c));
	CHECK_EQ(0, goro_close(dl_s));
	CHECK_EQ(0, goro_close(lfd_shared));
}

TEST(deadline_moved_and_write_deadline)
{
	ASSERT_EQ(0, goro_main(write_deadline_main, NULL));
	ASSERT_CHECKS();
	ASSERT_GE(dl_elapsed[0], 10 * MS);
	ASSERT_LT(dl_elapsed[0], 5000 * MS);
	ASSERT_GE(dl_elapsed[1], 30 * MS);
}

/* ----------------------------------------------------------------- */

static struct goro_waitgroup close_wg;
static int close_fd;
static ssize_t close_res[4];

static void blocked_reader(void *arg)
{
	char buf[8];

	close_res[(intptr_t)arg] = goro_read(close_fd, buf, sizeof(buf));
	goro_waitgroup_done(&close_wg);
}

static void blocked_writer(void *arg)
{
	static char big[1 << 20];
	ssize_t n;

	while ((n = goro_write(close_fd, big, sizeof(big))) > 0)
		;
	close_res[(intptr_t)arg] = n;
	goro_waitgroup_done(&close_wg);
}

static void blocked_acceptor(void *arg)
{
	close_res[(intptr_t)arg] = goro_accept(lfd_shared, NULL, NULL);
	goro_waitgroup_done(&close_wg);
}

static int close_fds_before, close_fds_after;

static int count_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

static void close_main(void *arg)
{
	int c, s;

	(void)arg;
	close_fds_before = count_fds();
	listen_loopback();
	c = goro_net_dial(shared_addr);
	s = goro_accept(lfd_shared, NULL, NULL);
	CHECK_GE(c, 0);
	CHECK_GE(s, 0);
	close_fd = c;
	goro_waitgroup_add(&close_wg, 4);
	go(blocked_reader, (void *)0);
	go(blocked_reader, (void *)1);	/* queued behind the first */
	go(blocked_writer, (void *)2);
	go(blocked_acceptor, (void *)3);
	goro_sleep(30 * MS);
	CHECK_EQ(0, goro_close(c));
	CHECK_EQ(0, goro_close(lfd_shared));	/* shutdown of a server */
	goro_waitgroup_wait(&close_wg);
	/* the blocked first reader and the writer were woken; the second
	 * reader was woken or started after the close */
	CHECK_EQ(-ECANCELED, close_res[0]);
	CHECK(close_res[1] == -ECANCELED || close_res[1] == -EBADF);
	/* the writer: woken at the start of a call, or mid-call with a
	 * partial count and then -EBADF on its next call */
	CHECK(close_res[2] == -ECANCELED || close_res[2] == -EBADF);
	CHECK_EQ(-ECANCELED, close_res[3]);
	CHECK_EQ(-EBADF, goro_close(c));
	/* the peer saw the close (FIN, the poll request let go of it) */
	{
		static char sink[1 << 16];
		ssize_t n;

		CHECK_EQ(0, goro_set_deadline(s, goro_nanotime() + 2000 * MS,
					      GORO_DEADLINE_READ));
		while ((n = goro_read(s, sink, sizeof(sink))) > 0)
			;
		CHECK(n == 0 || n == -ECONNRESET);
	}
	CHECK_EQ(0, goro_close(s));
	close_fds_after = count_fds();
}

TEST(close_wakes_blocked_reader_writer_acceptor)
{
	ASSERT_EQ(0, goro_main(close_main, NULL));
	ASSERT_CHECKS();
	/* the poller's own fds come once; no connection fd leaks */
	ASSERT_LE(close_fds_after, close_fds_before + 2);
}

/* ----------------------------------------------------------------- */

static int emfile_calls;
static int64_t emfile_elapsed;

static void emfile_main(void *arg)
{
	struct rlimit rl;
	int dups[64], ndup = 0, c, s, r;
	int64_t t0;
	char buf[4];

	(void)arg;
	listen_loopback();
	c = goro_net_dial(shared_addr);
	CHECK_GE(c, 0);
	/* fill the fd table: a few above what is open now */
	CHECK_EQ(0, getrlimit(RLIMIT_NOFILE, &rl));
	rl.rlim_cur = (rlim_t)(c + 8);
	CHECK_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	while (ndup < 64 && (dups[ndup] = dup(0)) >= 0)
		ndup++;
	CHECK(ndup < 64);
	/* accept fails with EMFILE, and backs off instead of spinning */
	t0 = goro_nanotime();
	do {
		r = goro_accept(lfd_shared, NULL, NULL);
		emfile_calls++;
	} while (r == -EMFILE && goro_nanotime() - t0 < 150 * MS);
	emfile_elapsed = goro_nanotime() - t0;
	CHECK_EQ(-EMFILE, r);
	/* fds come back: the pending connection is accepted and works */
	while (ndup > 0)
		close(dups[--ndup]);
	s = goro_accept(lfd_shared, NULL, NULL);
	CHECK_GE(s, 0);
	CHECK_EQ(3, goro_write(c, "abc", 3));
	CHECK_EQ(3, read_full(s, buf, 3));
	CHECK_EQ(0, goro_close(s));
	CHECK_EQ(0, goro_close(c));
	CHECK_EQ(0, goro_close(lfd_shared));
}

TEST(accept_backs_off_on_fd_exhaustion)
{
	ASSERT_EQ(0, goro_main(emfile_main, NULL));
	ASSERT_CHECKS();
	TH_LOG("%d accept calls in %lld ms", emfile_calls,
	       (long long)(emfile_elapsed / MS));
	/* 5+10+20+40+80 ms: about 5 calls, never a spin */
	ASSERT_LE(emfile_calls, 10);
	ASSERT_GE(emfile_calls, 2);
}

TEST_HARNESS_MAIN
