// SPDX-License-Identifier: MIT
/*
 * netpoll_epoll.c - the epoll poller (Go's netpoll_epoll.go).
 *
 * Each fd is added once, edge-triggered, for both directions; its event
 * data is the descriptor's token (netpoll.c), so an event for a closed
 * and reused descriptor is recognised and dropped.  netpoll_break
 * writes an eventfd that is registered level-triggered: the blocking
 * poll that sees it reads it back to zero and clears `breaking`, so any
 * number of breaks before that poll cost one write.
 *
 * Chosen when io_uring cannot be set up (ENOSYS, EPERM from
 * kernel.io_uring_disabled or a seccomp filter, ENOMEM from
 * RLIMIT_MEMLOCK on old kernels), and by GORODEBUG=netpoll=epoll.
 * epoll_wait is thread-safe, so several Ms may poll at once.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "netpoll.h"

#define EPOLL_BATCH	128
#define BREAK_TOKEN	1ULL	/* no descriptor is at address 1 */
/* what may leave data behind a short read (netpoll.h PD_MODE_HUP) */
#define EPOLL_HUP	(EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)

static int epfd = -1;
static int breakfd = -1;
static uint32_t breaking;	/* atomic: a break is pending */

static int epoll_init(void)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = BREAK_TOKEN };
	int err;

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return -errno;
	breakfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (breakfd < 0) {
		err = -errno;
		goto out_close_ep;
	}
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, breakfd, &ev) < 0) {
		err = -errno;
		goto out_close_break;
	}
	return 0;

out_close_break:
	close(breakfd);
	breakfd = -1;
out_close_ep:
	close(epfd);
	epfd = -1;
	return err;
}

static int epoll_open(struct polldesc *pd)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET,
		.data.u64 = pd_token(pd),
	};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, pd->fd, &ev) < 0 ? -errno : 0;
}

static void epoll_close(struct polldesc *pd)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, pd->fd, NULL);
}

static void epoll_wakeup(void)
{
	uint64_t one = 1;

	if (__atomic_exchange_n(&breaking, 1, __ATOMIC_ACQ_REL))
		return;
	while (write(breakfd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void epoll_drain_break(void)
{
	uint64_t v;

	while (read(breakfd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	__atomic_store_n(&breaking, 0, __ATOMIC_RELEASE);
}

static int epoll_timeout_ms(int64_t deadline)
{
	int64_t d;

	if (deadline <= 0)
		return deadline < 0 ? -1 : 0;
	d = deadline - nanotime();
	if (d <= 0)
		return 0;
	/* Round up: waking early only means a second, shorter wait. */
	d = (d + 999999) / 1000000;
	return d > INT32_MAX ? INT32_MAX : (int)d;
}

static int32_t epoll_poll(int64_t deadline, struct gqueue *q)
{
	struct epoll_event evs[EPOLL_BATCH];
	int32_t n = 0;
	int nev;

	nev = epoll_wait(epfd, evs, EPOLL_BATCH, epoll_timeout_ms(deadline));
	if (nev < 0) {
		if (errno != EINTR)
			throw("netpoll: epoll_wait failed");
		return 0;
	}
	for (int i = 0; i < nev; i++) {
		uint32_t e = evs[i].events;
		struct polldesc *pd;
		int modes = 0;

		/* Only a blocking poll consumes a break: a non-blocking
		 * one may run beside the blocked M the break is for, and
		 * epoll wakes one waiter per event. */
		if (evs[i].data.u64 == BREAK_TOKEN) {
			if (deadline)
				epoll_drain_break();
			continue;
		}
		pd = pd_from_token(evs[i].data.u64);
		if (!pd)
			continue;
		if (e & (EPOLLIN | EPOLL_HUP))
			modes |= PD_MODE_R;
		if (e & EPOLL_HUP)
			modes |= PD_MODE_HUP;
		if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			modes |= PD_MODE_W;
		n += netpollready(q, pd, modes);
	}
	return n;
}

static int epoll_pollfd(void)
{
	return epfd;
}

const struct netpoll_ops netpoll_epoll_ops = {
	.name	= "epoll",
	.init	= epoll_init,
	.open	= epoll_open,
	.close	= epoll_close,
	.poll	= epoll_poll,
	.wakeup	= epoll_wakeup,
	.pollfd	= epoll_pollfd,
};
