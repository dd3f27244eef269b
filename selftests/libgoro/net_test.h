/* SPDX-License-Identifier: MIT */
/*
 * net_test.h - helpers of the I/O selftests: CHECK() records the first
 * failure inside goroutines (the harness's ASSERTs only work in the
 * TEST body), a byte pattern that each connection checks, and the
 * poller the run is expected to use (GORODEBUG=netpoll=epoll in the
 * epoll/ variant of every test).
 */
#ifndef NET_TEST_H
#define NET_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <goro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "netpoll.h"
#include "sched_test.h"	/* SANITIZED, TSAN, run_child, tgate */

#define MS	(1000 * 1000LL)

static int check_line;
static char check_msg[256];

static inline void check_fail(int line, const char *what, long long a,
			      long long b)
{
	int zero = 0;

	if (__atomic_compare_exchange_n(&check_line, &zero, line, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		snprintf(check_msg, sizeof(check_msg),
			 "line %d: %s (%lld vs %lld)", line, what, a, b);
}

#define CHECK(c)	do { if (!(c)) check_fail(__LINE__, #c, 0, 0); } while (0)
#define CHECK_EQ(a, b)	do { long long _a = (a), _b = (b);		\
			     if (_a != _b) check_fail(__LINE__,		\
				#a " == " #b, _a, _b); } while (0)
#define CHECK_GE(a, b)	do { long long _a = (a), _b = (b);		\
			     if (_a < _b) check_fail(__LINE__,		\
				#a " >= " #b, _a, _b); } while (0)

/* In the TEST body, after goro_main: no goroutine saw a failure. */
#define ASSERT_CHECKS()	do { if (check_line) TH_LOG("%s", check_msg);	\
			     ASSERT_EQ(0, check_line); } while (0)

/* The VM's init leaves the loopback interface down: bring it up (as
 * root; elsewhere it is up already and this does nothing). */
__attribute__((constructor)) static void loopback_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return;
	if (!ioctl(fd, SIOCGIFFLAGS, &ifr) && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
}

/* Byte i of connection c's stream. */
static inline unsigned char pattern(unsigned long c, unsigned long i)
{
	return (unsigned char)(c * 131 + i * 7 + (i >> 8));
}

/* The poller this run must use: epoll when forced or when io_uring is
 * disabled on this kernel, io_uring otherwise. */
static inline const char *expected_poller(void)
{
	const char *env = getenv("GORODEBUG");
	char v = '0';
	int fd;

	if (env && strstr(env, "netpoll=epoll"))
		return "epoll";
	fd = open("/proc/sys/kernel/io_uring_disabled", O_RDONLY);
	if (fd >= 0) {
		if (read(fd, &v, 1) != 1)
			v = '0';
		close(fd);
	}
	return v == '0' ? "uring" : "epoll";
}

/* Raise RLIMIT_NOFILE to want (root may raise the hard limit too), or
 * else to the hard limit; returns the soft limit now. */
static inline long raise_nofile(long want)
{
	struct rlimit rl = { .rlim_cur = (rlim_t)want, .rlim_max = (rlim_t)want };

	if (!getrlimit(RLIMIT_NOFILE, &rl) && (long)rl.rlim_max < want) {
		struct rlimit up = { (rlim_t)want, (rlim_t)want };

		if (!setrlimit(RLIMIT_NOFILE, &up))
			return want;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 1024;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	return (long)rl.rlim_cur;
}

/* The port a listening socket got. */
static inline int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Read exactly len bytes: len, 0 on EOF first, or -errno. */
static inline ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = goro_read(fd, (char *)buf + got, len - got);

		if (n <= 0)
			return n ? n : (ssize_t)got;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

#endif
