// SPDX-License-Identifier: GPL-2.0
/*
 * netpoll_test: GORO_IOC_NETPOLL and M_PARK with GORO_PARK_NETPOLL.
 *
 * What is proven here: the feature bit; every bad input word refused
 * with -EINVAL (and nothing bound by it); -EBADF for fds that are not
 * open; -EINVAL for files that cannot be polled or offer two wait
 * queues; bind, -EBUSY on a second bind, unbind, -ENOENT on a second
 * unbind, rebind; a park with the flag and nothing bound is -ENOENT and
 * keeps the token; readiness that predates the park ends it at once with
 * GORO_PARK_IO, the token wins over I/O, and the deadline still works
 * on a quiet fd; an eventfd or epoll write wakes a parked M, a plain
 * park ignores I/O, and unbind wakes the parker; the instance holds the
 * bound file (closing the fd number changes nothing) and lets it go at
 * unbind, at close of /dev/goro and at the owner's exit (seen from a
 * pipe's writer: EPIPE once the last reader is gone); another process
 * gets -EPERM and cannot touch the binding; goro:netpoll_wake fires
 * with the fd as bound.  The VM runner's rmmod and
 * dmesg scan after the run catch a leaked hook or reference.
 */
#include <limits.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "goro_test.h"

static const uint32_t bad_flags[] = {
	GORO_NETPOLL_UNBIND << 1, 0x80000000u, ~0u,
};
static const uint64_t bad_u64[] = { 1, 1ULL << 63, ~0ULL };

static int np_ioc(int fd, int bfd, uint32_t flags)
{
	struct goro_netpoll np = { .fd = bfd, .flags = flags };

	return goro_ioc(fd, GORO_IOC_NETPOLL, &np);
}

static int np_bind(int fd, int bfd)
{
	return np_ioc(fd, bfd, 0);
}

static int np_unbind(int fd)
{
	return np_ioc(fd, -1, GORO_NETPOLL_UNBIND);
}

static int np_park(int fd, uint64_t deadline_ns)
{
	struct goro_m_park park = {
		.deadline_ns = deadline_ns,
		.flags = GORO_PARK_NETPOLL,
	};

	return goro_ioc(fd, GORO_IOC_M_PARK, &park);
}

static int efd_write(int efd)
{
	uint64_t one = 1;

	return write(efd, &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

static int efd_drain(int efd)
{
	uint64_t v;

	return read(efd, &v, sizeof(v)) == sizeof(v) ? 0 : -errno;
}

FIXTURE(netpoll) {
	int fd;
	int efd;
	struct goro_info info;
};

FIXTURE_SETUP(netpoll)
{
	self->fd = goro_open_or_skip();
	ASSERT_EQ(0, goro_get_info(self->fd, &self->info));
	if (!(self->info.features & GORO_FEAT_NETPOLL))
		SKIP(return, "goro.ko without GORO_FEAT_NETPOLL");
	self->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, self->efd);
	signal(SIGPIPE, SIG_IGN);
}

FIXTURE_TEARDOWN(netpoll)
{
	close(self->efd);
	close(self->fd);
}

/* ---- ABI ----------------------------------------------------------------- */

TEST_F(netpoll, feature_bit)
{
	EXPECT_EQ(GORO_FEAT_NETPOLL, self->info.features & GORO_FEAT_NETPOLL);
	EXPECT_EQ(0, sizeof(struct goro_netpoll) % 8);
}

TEST_F(netpoll, bad_fields)
{
	struct goro_netpoll np;

	for (unsigned int v = 0; v < ARRAY_SIZE(bad_flags); v++) {
		EXPECT_EQ(-EINVAL, np_ioc(self->fd, self->efd, bad_flags[v]))
			TH_LOG("flags %#x", bad_flags[v]);
		EXPECT_EQ(-EINVAL, np_ioc(self->fd, -1,
					  bad_flags[v] | GORO_NETPOLL_UNBIND));
	}
	for (unsigned int r = 0; r < ARRAY_SIZE(np.reserved); r++) {
		for (unsigned int v = 0; v < ARRAY_SIZE(bad_u64); v++) {
			memset(&np, 0, sizeof(np));
			np.fd = self->efd;
			np.reserved[r] = bad_u64[v];
			EXPECT_EQ(-EINVAL, goro_ioc(self->fd, GORO_IOC_NETPOLL,
						    &np))
				TH_LOG("reserved[%u] %#llx", r,
				       (unsigned long long)bad_u64[v]);
		}
	}
	/* UNBIND names no fd: anything but -1 is refused */
	EXPECT_EQ(-EINVAL, np_ioc(self->fd, self->efd, GORO_NETPOLL_UNBIND));
	EXPECT_EQ(-EINVAL, np_ioc(self->fd, 0, GORO_NETPOLL_UNBIND));
	EXPECT_EQ(-EINVAL, np_ioc(self->fd, -2, GORO_NETPOLL_UNBIND));
	/* none of them bound anything */
	EXPECT_EQ(-ENOENT, np_unbind(self->fd));
	EXPECT_EQ(-EFAULT, goro_ioc(self->fd, GORO_IOC_NETPOLL, NULL));
	EXPECT_EQ(-EFAULT, goro_ioc(self->fd, GORO_IOC_NETPOLL,
				    GORO_KERNEL_PTR));
}

TEST_F(netpoll, ebadf)
{
	int dead = dup(self->efd);

	ASSERT_LE(0, dead);
	close(dead);
	EXPECT_EQ(-EBADF, np_bind(self->fd, -1));
	EXPECT_EQ(-EBADF, np_bind(self->fd, INT_MIN));
	EXPECT_EQ(-EBADF, np_bind(self->fd, dead));
	EXPECT_EQ(-EBADF, np_bind(self->fd, INT_MAX));
	EXPECT_EQ(-ENOENT, np_unbind(self->fd));
}

TEST_F(netpoll, unpollable)
{
	char dir[] = "/tmp/goro-npXXXXXX", fifo[64];
	int mfd, ffd;

	/* no poll at all: a memfd, /dev/goro itself */
	mfd = memfd_create("goro-np", MFD_CLOEXEC);
	ASSERT_LE(0, mfd);
	EXPECT_EQ(-EINVAL, np_bind(self->fd, mfd));
	close(mfd);
	EXPECT_EQ(-EINVAL, np_bind(self->fd, self->fd));
	/* two wait queues: a FIFO open for reading and writing */
	ASSERT_NE(NULL, mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	ASSERT_EQ(0, mkfifo(fifo, 0600));
	ffd = open(fifo, O_RDWR | O_CLOEXEC);
	unlink(fifo);
	rmdir(dir);
	ASSERT_LE(0, ffd);
	EXPECT_EQ(-EINVAL, np_bind(self->fd, ffd));
	close(ffd);
	EXPECT_EQ(-ENOENT, np_unbind(self->fd));
}

TEST_F(netpoll, bind_unbind_rebind)
{
	int efd2 = eventfd(0, EFD_CLOEXEC);

	ASSERT_LE(0, efd2);
	EXPECT_EQ(0, np_bind(self->fd, self->efd));
	EXPECT_EQ(-EBUSY, np_bind(self->fd, self->efd));
	EXPECT_EQ(-EBUSY, np_bind(self->fd, efd2));
	EXPECT_EQ(0, np_unbind(self->fd));
	EXPECT_EQ(-ENOENT, np_unbind(self->fd));
	EXPECT_EQ(0, np_bind(self->fd, efd2));
	EXPECT_EQ(0, np_unbind(self->fd));
	EXPECT_EQ(0, np_bind(self->fd, self->efd));
	/* left bound: release() unbinds */
	close(efd2);
}

/* ---- M_PARK with GORO_PARK_NETPOLL, one thread --------------------------- */

TEST_F(netpoll, park_unbound_keeps_token)
{
	struct goro_m_park park = { .flags = GORO_PARK_NETPOLL << 1 };
	uint32_t slot;

	EXPECT_EQ(-EPERM, np_park(self->fd, 0));
	ASSERT_EQ(0, goro_register(self->fd, &slot));
	EXPECT_EQ(-EINVAL, goro_ioc(self->fd, GORO_IOC_M_PARK, &park));
	ASSERT_EQ(0, goro_unpark(self->fd, slot));
	EXPECT_EQ(-ENOENT, np_park(self->fd, GORO_NO_DEADLINE));
	EXPECT_EQ(0, goro_park(self->fd, 0));
}

TEST_F(netpoll, level_token_timeout)
{
	uint64_t t0, deadline;
	uint32_t slot;

	ASSERT_EQ(0, goro_register(self->fd, &slot));
	ASSERT_EQ(0, efd_write(self->efd));
	ASSERT_EQ(0, np_bind(self->fd, self->efd));

	/* readable before the park: it returns at once, every time */
	t0 = goro_now_ns();
	EXPECT_EQ(GORO_PARK_IO, np_park(self->fd, GORO_NO_DEADLINE));
	EXPECT_EQ(GORO_PARK_IO, np_park(self->fd, t0 + 10 * NSEC_PER_SEC));
	EXPECT_GT(t0 + 2 * NSEC_PER_SEC, goro_now_ns());

	/* the token wins, and I/O does not consume it */
	ASSERT_EQ(0, goro_unpark(self->fd, slot));
	EXPECT_EQ(0, np_park(self->fd, GORO_NO_DEADLINE));
	EXPECT_EQ(GORO_PARK_IO, np_park(self->fd, GORO_NO_DEADLINE));

	/* a plain park does not look at the fd */
	EXPECT_EQ(-ETIMEDOUT, goro_park(self->fd, goro_now_ns() +
					10 * NSEC_PER_MSEC));

	/* quiet fd: the deadline still ends the park, never early */
	ASSERT_EQ(0, efd_drain(self->efd));
	t0 = goro_now_ns();
	deadline = t0 + 20 * NSEC_PER_MSEC;
	EXPECT_EQ(-ETIMEDOUT, np_park(self->fd, deadline));
	EXPECT_LE(deadline, goro_now_ns());
	EXPECT_EQ(-ETIMEDOUT, np_park(self->fd, 0));
}

/* ---- a parked M woken by I/O --------------------------------------------- */

struct parker {
	int fd;
	uint64_t deadline;
	bool netpoll;
	pid_t tid;
	int reg_ret;
	int ret;
	uint64_t took_ns;
};

static void *parker_main(void *arg)
{
	struct parker *pk = arg;
	uint64_t t0;

	pk->tid = goro_gettid();
	pk->reg_ret = goro_register(pk->fd, NULL);
	if (pk->reg_ret)
		return NULL;
	t0 = goro_now_ns();
	pk->ret = pk->netpoll ? np_park(pk->fd, pk->deadline) :
				goro_park(pk->fd, pk->deadline);
	pk->took_ns = goro_now_ns() - t0;
	goro_unregister(pk->fd);
	return NULL;
}

/* Starts a parker and waits until it sleeps in the ioctl. */
static bool parker_start(struct parker *pk, pthread_t *th)
{
	if (pthread_create(th, NULL, parker_main, pk))
		return false;
	for (int i = 0; i < 10000 && !__atomic_load_n(&pk->tid,
						      __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	return pk->tid && goro_wait_in_ioctl(getpid(), pk->tid, 10000);
}

TEST_F(netpoll, eventfd_write_wakes_parker)
{
	struct parker pk = { .fd = self->fd, .netpoll = true,
			     .deadline = GORO_NO_DEADLINE };
	pthread_t th;

	ASSERT_EQ(0, np_bind(self->fd, self->efd));
	ASSERT_TRUE(parker_start(&pk, &th));
	ASSERT_EQ(0, efd_write(self->efd));
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(0, pk.reg_ret);
	EXPECT_EQ(GORO_PARK_IO, pk.ret);
}

TEST_F(netpoll, plain_park_ignores_io)
{
	struct parker pk = { .fd = self->fd, .netpoll = false };
	pthread_t th;

	ASSERT_EQ(0, np_bind(self->fd, self->efd));
	pk.deadline = goro_now_ns() + 300 * NSEC_PER_MSEC;
	ASSERT_TRUE(parker_start(&pk, &th));
	ASSERT_EQ(0, efd_write(self->efd));
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(0, pk.reg_ret);
	EXPECT_EQ(-ETIMEDOUT, pk.ret);
}

TEST_F(netpoll, epoll_fd_wakes_parker)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct parker pk = { .fd = self->fd, .netpoll = true,
			     .deadline = GORO_NO_DEADLINE };
	pthread_t th;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->efd, &ev));
	ASSERT_EQ(0, np_bind(self->fd, ep));
	ASSERT_TRUE(parker_start(&pk, &th));
	ASSERT_EQ(0, efd_write(self->efd));
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(GORO_PARK_IO, pk.ret);
	EXPECT_EQ(0, np_unbind(self->fd));
	close(ep);
}

TEST_F(netpoll, unbind_wakes_parker)
{
	struct parker pk = { .fd = self->fd, .netpoll = true,
			     .deadline = GORO_NO_DEADLINE };
	pthread_t th;

	ASSERT_EQ(0, np_bind(self->fd, self->efd));
	ASSERT_TRUE(parker_start(&pk, &th));
	ASSERT_EQ(0, np_unbind(self->fd));
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(GORO_PARK_IO, pk.ret);
}

/* ---- goro:netpoll_wake --------------------------------------------------- */

#define NP_TRACE_EVENT	"/sys/kernel/tracing/events/goro/netpoll_wake/enable"
#define NP_TRACE	"/sys/kernel/tracing/trace"

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -EIO;
}

/* Whether the trace buffer holds a line that contains needle. */
static bool trace_has(const char *needle)
{
	char line[512];
	bool found = false;
	FILE *f = fopen(NP_TRACE, "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

TEST_F(netpoll, tracepoint_fires)
{
	char needle[96];

	if (write_str(NP_TRACE_EVENT, "1"))
		SKIP(return, "tracefs not writable here");
	ASSERT_EQ(0, write_str(NP_TRACE, ""));
	ASSERT_EQ(0, np_bind(self->fd, self->efd));
	ASSERT_EQ(0, efd_write(self->efd));
	write_str(NP_TRACE_EVENT, "0");
	snprintf(needle, sizeof(needle), "netpoll_wake: tgid=%d fd=%d ",
		 getpid(), self->efd);
	EXPECT_TRUE(trace_has(needle)) TH_LOG("no \"%s\" in the trace",
					      needle);
	EXPECT_EQ(0, np_unbind(self->fd));
}

/* ---- the bound file's lifetime ------------------------------------------- */

/* A pipe whose read end only the binding holds: writes succeed while it
 * does, and fail with EPIPE once it let go. */
static int pipe_write(int wfd)
{
	char c = 'x';

	return write(wfd, &c, 1) == 1 ? 0 : -errno;
}

TEST_F(netpoll, close_of_bound_fd)
{
	struct parker pk = { .fd = self->fd, .netpoll = true,
			     .deadline = GORO_NO_DEADLINE };
	pthread_t th;
	int p[2];

	ASSERT_EQ(0, pipe2(p, O_CLOEXEC | O_NONBLOCK));
	ASSERT_EQ(0, np_bind(self->fd, p[0]));
	ASSERT_EQ(0, close(p[0]));
	ASSERT_TRUE(parker_start(&pk, &th));
	/* the binding is a reader: the write succeeds and wakes the M */
	EXPECT_EQ(0, pipe_write(p[1]));
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(GORO_PARK_IO, pk.ret);
	/* unbind drops the last reader */
	EXPECT_EQ(0, np_unbind(self->fd));
	EXPECT_EQ(-EPIPE, pipe_write(p[1]));
	close(p[1]);
}

TEST_F(netpoll, release_drops_file)
{
	int p[2], gfd;

	ASSERT_EQ(0, pipe2(p, O_CLOEXEC | O_NONBLOCK));
	gfd = open(GORO_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, gfd);
	ASSERT_EQ(0, np_bind(gfd, p[0]));
	close(p[0]);
	EXPECT_EQ(0, pipe_write(p[1]));
	close(gfd);
	EXPECT_EQ(-EPIPE, pipe_write(p[1]));
	close(p[1]);
}

TEST_F(netpoll, owner_exit_drops_file)
{
	int p[2], sync[2], status;
	char c;
	pid_t pid;

	ASSERT_EQ(0, pipe2(p, O_CLOEXEC | O_NONBLOCK));
	ASSERT_EQ(0, pipe(sync));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int gfd = open(GORO_DEV, O_RDWR | O_CLOEXEC);

		c = gfd >= 0 && !np_bind(gfd, p[0]) ? 'y' : 'n';
		close(p[0]);
		if (write(sync[1], &c, 1) != 1)
			_exit(2);
		/* parked for good, with the binding held: then killed */
		if (!goro_register(gfd, NULL))
			np_park(gfd, GORO_NO_DEADLINE);
		_exit(1);
	}
	close(p[0]);
	close(sync[1]);
	ASSERT_EQ(1, read(sync[0], &c, 1));
	ASSERT_EQ('y', c);
	EXPECT_EQ(0, pipe_write(p[1]));
	EXPECT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	/* the last fput may be deferred to a work item: allow it 2 s */
	for (int i = 0; i < 2000 && pipe_write(p[1]) == 0; i++)
		usleep(1000);
	EXPECT_EQ(-EPIPE, pipe_write(p[1]));
	close(sync[0]);
	close(p[1]);
}

TEST_F(netpoll, other_process_is_eperm)
{
	int status;
	pid_t pid;

	ASSERT_EQ(0, np_bind(self->fd, self->efd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int ok = np_bind(self->fd, self->efd) == -EPERM &&
			 np_unbind(self->fd) == -EPERM &&
			 np_park(self->fd, 0) == -EPERM;

		_exit(ok ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* the child's attempts changed nothing here */
	EXPECT_EQ(-EBUSY, np_bind(self->fd, self->efd));
	EXPECT_EQ(0, np_unbind(self->fd));
}

TEST_HARNESS_MAIN
