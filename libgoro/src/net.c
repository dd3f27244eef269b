// SPDX-License-Identifier: MIT
/*
 * net.c - the public I/O API: goroutine-blocking read, write, accept,
 * connect and close on non-blocking fds, deadlines, and the socket
 * helpers goro_net_listen / goro_net_dial (Go's internal/poll.FD and
 * net.Listen/Dial, in C).
 *
 * Every call follows one pattern: take a reference on the fd's poll
 * descriptor (-EBADF when the fd is not attached or is being closed),
 * serialise with the other readers or writers of the fd, then loop: the
 * non-blocking syscall, and on EAGAIN wait in pd_wait() (netpoll.c) for
 * readiness, the deadline (-ETIMEDOUT) or goro_close (-ECANCELED).  The
 * goroutine parks; its M runs others.  Results are -errno, never errno.
 *
 * Addresses are strings, Go's network and address in one:
 *   "tcp:HOST:PORT"    IPv4 or IPv6 by the literal ("tcp:[::1]:80")
 *   "tcp4:HOST:PORT"   IPv4 only; "tcp6:[HOST]:PORT" IPv6 only
 *   "unix:/path"       a filesystem socket; "unix:@name" abstract
 * HOST is a numeric literal or "localhost" (no DNS: a resolver would
 * block the M); an empty HOST is the wildcard of the family (IPv4 for
 * "tcp:") for listen and loopback for dial.  PORT 0 listens on an ephemeral port
 * (getsockname tells which).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "netpoll.h"

/*
 * errno is per thread and a goroutine may resume on another thread
 * after any wait, while __errno_location() is a const function whose
 * result the compiler may keep across that wait.  So the syscalls of a
 * loop that waits are wrapped in functions the compiler cannot see into
 * (noipa), each returning the result or -errno.
 */
#define SYSWRAP	__attribute__((noinline, noipa))

SYSWRAP static ssize_t sys_read(int fd, void *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);

	return n < 0 ? -errno : n;
}

SYSWRAP static ssize_t sys_write(int fd, const void *buf, size_t len,
				 bool sock)
{
	ssize_t n = sock ? send(fd, buf, len, MSG_NOSIGNAL) :
			   write(fd, buf, len);

	return n < 0 ? -errno : n;
}

SYSWRAP static int sys_accept(int fd, struct sockaddr *addr,
			      socklen_t *addrlen)
{
	int nfd = accept4(fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);

	return nfd < 0 ? -errno : nfd;
}

SYSWRAP static int sys_connect(int fd, const struct sockaddr *addr,
			       socklen_t addrlen)
{
	return connect(fd, addr, addrlen) < 0 ? -errno : 0;
}

/* The socket's pending error (positive), or -errno. */
SYSWRAP static int sys_soerror(int fd)
{
	socklen_t len = sizeof(int);
	int soerr;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -errno;
	return soerr;
}

SYSWRAP static int sys_getpeername(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	return getpeername(fd, (struct sockaddr *)&ss, &len) < 0 ? -errno : 0;
}

/* A multishot accept gives no address: ask, as accept4 would have
 * told.  A peer already gone leaves an empty address (len 0). */
SYSWRAP static void sys_getpeername_into(int fd, struct sockaddr *addr,
					 socklen_t *addrlen)
{
	if (getpeername(fd, addr, addrlen) < 0)
		*addrlen = 0;
}

#define LISTEN_BACKLOG		4096
#define ACCEPT_BACKOFF_MIN_MS	5
#define ACCEPT_BACKOFF_MAX_MS	100

/* ---------------------------------------------------------------------
 * Reads and writes
 * ------------------------------------------------------------------- */

int32_t debug_netpollshortread = 1;

/*
 * rmu held.  A short read of a TCP socket emptied it: tcp_recvmsg
 * copies until the caller's buffer is full or the receive queue is
 * empty, so the next read(2) would find EAGAIN unless data came since,
 * and data that comes makes an event (edge-triggered: the slot turns
 * ready).  So wait for that event before reading again instead of
 * paying for a read that fails - one syscall in three of a
 * request/response exchange.  What else stops a read short with more
 * to read - EOF or an error after the data, urgent data - makes the
 * poller report PD_MODE_HUP first (rdhup), which ends the shortcut for
 * the fd.  Unix sockets are left out: their reads stop short at every
 * message that passes fds or credentials.  It pays on epoll, which
 * polls the socket for each event; io_uring's poll reports the wake-up's
 * key instead, and a socket's data wake-up carries EPOLLPRI
 * (sock_def_readable), so there every event counts as PD_MODE_HUP and
 * the shortcut stays off - its receives make no such read anyway.
 */
static bool read_would_block(struct polldesc *pd)
{
	return pd->rdrained && !__atomic_load_n(&pd->rdhup, __ATOMIC_ACQUIRE);
}

GORO_API ssize_t goro_read(int fd, void *buf, size_t len)
{
	struct polldesc *pd = pd_acquire(fd);
	ssize_t n;

	if (!pd)
		return -EBADF;
	goro_mutex_lock(&pd->rmu);
	n = pd_prepare(pd, PD_MODE_R);
	if (n || !len)
		goto out_unlock;
	for (;;) {
		/* io_uring's receives may hold data for us already */
		n = pd_read(pd, buf, len);
		if (n == -EOPNOTSUPP) {
			if (read_would_block(pd))
				n = -EAGAIN;
			else
				n = sys_read(fd, buf, len);
			pd->rdrained = n > 0 && (size_t)n < len &&
				       pd->kind & PD_KIND_TCP &&
				       debug_netpollshortread;
		}
		if (n >= 0)
			break;
		if (n == -EINTR)
			continue;
		if (n != -EAGAIN)
			break;
		n = pd_wait(pd, PD_MODE_R);
		if (n)
			break;
		pd->rdrained = false;	/* an event came: read */
	}
out_unlock:
	goro_mutex_unlock(&pd->rmu);
	pd_release(pd);
	return n;
}

GORO_API ssize_t goro_write(int fd, const void *buf, size_t len)
{
	struct polldesc *pd = pd_acquire(fd);
	size_t done = 0;
	ssize_t n;

	if (!pd)
		return -EBADF;
	goro_mutex_lock(&pd->wmu);
	n = pd_prepare(pd, PD_MODE_W);
	while (!n && done < len) {
		n = sys_write(fd, (const char *)buf + done, len - done,
			      pd->is_sock);
		if (n >= 0) {
			done += (size_t)n;
			n = 0;
		} else if (n == -EINTR) {
			n = 0;
		} else if (n == -EAGAIN) {
			n = pd_wait(pd, PD_MODE_W);
		}
	}
	goro_mutex_unlock(&pd->wmu);
	pd_release(pd);
	/* Bytes that went out are reported; the error comes next call. */
	return done ? (ssize_t)done : n;
}

/* ---------------------------------------------------------------------
 * accept, connect, close, deadlines
 * ------------------------------------------------------------------- */

/* Out of fds: sleep a growing while before reporting it, so that a
 * server looping on accept does not spin while the backlog is full. */
static void accept_backoff(struct polldesc *pd)
{
	int32_t ms = pd->backoff_ms;

	ms = ms ? ms * 2 : ACCEPT_BACKOFF_MIN_MS;
	if (ms > ACCEPT_BACKOFF_MAX_MS)
		ms = ACCEPT_BACKOFF_MAX_MS;
	pd->backoff_ms = ms;
	goro_sleep((int64_t)ms * 1000000);
}

GORO_API int goro_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	struct polldesc *pd = pd_acquire(fd);
	int nfd, err;

	if (!pd)
		return -EBADF;
	goro_mutex_lock(&pd->rmu);
	err = pd_prepare(pd, PD_MODE_R);
	while (!err) {
		/* io_uring's multishot accept may have queued one */
		nfd = pd_accept(pd);
		if (nfd >= 0 && addr && addrlen)
			sys_getpeername_into(nfd, addr, addrlen);
		else if (nfd == -EOPNOTSUPP)
			nfd = sys_accept(fd, addr, addrlen);
		if (nfd >= 0) {
			int one = 1;

			pd->backoff_ms = 0;
			if (pd->kind & PD_KIND_TCP)	/* as Go */
				setsockopt(nfd, IPPROTO_TCP, TCP_NODELAY, &one,
					   sizeof(one));
			err = pd_attach_socket(nfd, PD_KIND_STREAM |
					       (pd->kind & PD_KIND_TCP));
			if (err)
				close(nfd);
			else
				err = nfd;
			break;
		}
		err = nfd;
		if (err == -EINTR || err == -ECONNABORTED) {
			err = 0;
		} else if (err == -EAGAIN) {
			err = pd_wait(pd, PD_MODE_R);
		} else if (err == -EMFILE || err == -ENFILE) {
			accept_backoff(pd);
			break;
		}
	}
	goro_mutex_unlock(&pd->rmu);
	pd_release(pd);
	return err;
}

/* A non-blocking connect in progress: wait until it is done. */
static int connect_wait(struct polldesc *pd)
{
	int err;

	for (;;) {
		err = pd_wait(pd, PD_MODE_W);
		if (err)
			return err;
		err = sys_soerror(pd->fd);
		if (err < 0)
			return err;
		if (err == EINPROGRESS || err == EALREADY || err == EINTR)
			continue;
		if (err)
			return -err;
		/* Writable without an error may still be early: ask. */
		err = sys_getpeername(pd->fd);
		if (err != -ENOTCONN)
			return err;
	}
}

GORO_API int goro_connect(int fd, const struct sockaddr *addr,
			  socklen_t addrlen)
{
	struct polldesc *pd = pd_acquire(fd);
	int err;

	if (!pd)
		return -EBADF;
	goro_mutex_lock(&pd->wmu);
	err = pd_prepare(pd, PD_MODE_W);
	if (err)
		goto out_unlock;
	err = sys_connect(fd, addr, addrlen);
	if (err == -EINPROGRESS || err == -EINTR || err == -EALREADY)
		err = connect_wait(pd);
out_unlock:
	goro_mutex_unlock(&pd->wmu);
	pd_release(pd);
	return err;
}

GORO_API int goro_close(int fd)
{
	return pd_close(fd);
}

GORO_API int goro_set_deadline(int fd, int64_t when, unsigned int flags)
{
	struct polldesc *pd;
	int err;

	if (!flags || flags & ~(GORO_DEADLINE_READ | GORO_DEADLINE_WRITE))
		return -EINVAL;
	pd = pd_acquire(fd);
	if (!pd)
		return -EBADF;
	err = pd_set_deadline(pd, when,
			      (flags & GORO_DEADLINE_READ ? PD_MODE_R : 0) |
			      (flags & GORO_DEADLINE_WRITE ? PD_MODE_W : 0));
	pd_release(pd);
	return err;
}

/* ---------------------------------------------------------------------
 * Addresses, listen, dial
 * ------------------------------------------------------------------- */

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	long v;

	if (!*s)
		return -EINVAL;
	v = strtol(s, &end, 10);
	if (*end || v < 0 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/* "HOST:PORT" with family AF_INET, AF_INET6 or AF_UNSPEC (either). */
static int parse_inet(const char *s, int family, bool listen,
		      struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	const char *colon = strrchr(s, ':');
	char host[INET6_ADDRSTRLEN + 2];
	size_t hlen;
	uint16_t port;
	int err;

	if (!colon)
		return -EINVAL;
	err = parse_port(colon + 1, &port);
	if (err)
		return err;
	hlen = (size_t)(colon - s);
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
		s++;
		hlen -= 2;
		if (family == AF_INET)
			return -EINVAL;
		family = AF_INET6;
	}
	if (hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = 0;
	memset(ss, 0, sizeof(*ss));
	if (family == AF_UNSPEC)
		family = strchr(host, ':') ? AF_INET6 : AF_INET;
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		if (!*host || !strcmp(host, "localhost"))
			sin->sin_addr.s_addr = htonl(!*host && listen ?
						     INADDR_ANY :
						     INADDR_LOOPBACK);
		else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -EINVAL;
		return 0;
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	*len = sizeof(*sin6);
	if (!*host || !strcmp(host, "localhost"))
		sin6->sin6_addr = !*host && listen ? in6addr_any :
			in6addr_loopback;
	else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
		return -EINVAL;
	return 0;
}

static int parse_unix(const char *s, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	size_t n = strlen(s);

	if (!n || n >= sizeof(sun->sun_path))
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, s, n);
	if (s[0] == '@')
		sun->sun_path[0] = 0;	/* abstract: no terminating NUL */
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
			   (s[0] == '@' ? 0 : 1));
	return 0;
}

static int parse_addr(const char *addr, bool listen,
		      struct sockaddr_storage *ss, socklen_t *len)
{
	if (!addr)
		return -EINVAL;
	if (!strncmp(addr, "tcp:", 4))
		return parse_inet(addr + 4, AF_UNSPEC, listen, ss, len);
	if (!strncmp(addr, "tcp4:", 5))
		return parse_inet(addr + 5, AF_INET, listen, ss, len);
	if (!strncmp(addr, "tcp6:", 5))
		return parse_inet(addr + 5, AF_INET6, listen, ss, len);
	if (!strncmp(addr, "unix:", 5))
		return parse_unix(addr + 5, ss, len);
	return -EINVAL;
}

static int net_socket(int family)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	return fd < 0 ? -errno : fd;
}

GORO_API int goro_net_listen(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, err, one = 1;

	err = parse_addr(addr, true, &ss, &len);
	if (err)
		return err;
	fd = net_socket(ss.ss_family);
	if (fd < 0)
		return fd;
	if (ss.ss_family != AF_UNIX &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto out_errno;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0)
		goto out_errno;
	err = pd_attach_socket(fd, PD_KIND_LISTENER |
			       (ss.ss_family != AF_UNIX ? PD_KIND_TCP : 0));
	if (err)
		goto out_close;
	return fd;

out_errno:
	err = -errno;
out_close:
	close(fd);
	return err;
}

GORO_API int goro_net_dial(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, err, one = 1;

	err = parse_addr(addr, false, &ss, &len);
	if (err)
		return err;
	fd = net_socket(ss.ss_family);
	if (fd < 0)
		return fd;
	/* Go sets TCP_NODELAY on every TCP connection: so do we. */
	if (ss.ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	err = pd_attach_socket(fd, PD_KIND_STREAM |
			       (ss.ss_family != AF_UNIX ? PD_KIND_TCP : 0));
	if (err) {
		close(fd);
		return err;
	}
	err = goro_connect(fd, (struct sockaddr *)&ss, len);
	if (err) {
		goro_close(fd);
		return err;
	}
	return fd;
}
