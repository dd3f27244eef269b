// SPDX-License-Identifier: MIT
/*
 * netpoll_uring.c - the io_uring poller (liburing).
 *
 * Each attached fd gets one multishot IORING_OP_POLL_ADD for input and
 * output, tagged with the descriptor's token (netpoll.c): one CQE per
 * wake-up of the file, as EPOLLET gives.  A multishot poll that ends
 * without IORING_CQE_F_MORE (the kernel may end one, for instance when
 * the completion queue overflows) is armed again by the poll that reaps
 * its last CQE, unless the fd is being closed.  Close cancels the poll
 * by its token before close(2), so that the request's file reference
 * does not keep the socket open.  It is IORING_OP_ASYNC_CANCEL, not
 * POLL_REMOVE: a remove that meets the poll while a wake-up of it is
 * being processed fails with -EALREADY and leaves the poll armed, and
 * with it the socket (a peer waiting for our FIN waited forever), where
 * a cancel marks the request so that its current owner ends it.
 *
 * Concurrency.  The submission queue is shared by every M: sqlock
 * serialises the SQE writers (attach, close, re-arm, break).  The
 * completion queue has one reaper at a time, `cqowner`: the blocking
 * poll of sched.pollm takes it (it waits for the non-blocking reapers,
 * which hold it for a few loads), a non-blocking poll that finds it
 * taken returns nothing, since the owner is reaping anyway.  The
 * blocking wait uses IORING_FEAT_EXT_ARG's timeout, which needs no SQE,
 * so it never touches the submission queue; kernels without it use
 * epoll instead.
 *
 * netpoll_break submits a NOP: it completes inline in the breaker's
 * io_uring_enter and wakes the waiter directly, which an eventfd poll
 * would do through the task that armed it.  `breaking` makes any number
 * of breaks before the next blocking poll cost one NOP, and only a
 * blocking poll clears it: a non-blocking reaper that got the CQ first
 * may reap the NOP, and the blocking poll that comes next then sees
 * `breaking` still set and does not sleep.
 *
 * Alternatives left for measurement (issue 6): multishot accept,
 * provided-buffer receives and registered files replace a poll plus a
 * syscall by one completion, but need the I/O API to hand buffers to
 * the ring.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <liburing.h>

#include "netpoll.h"

#define URING_SQ_ENTRIES	256
#define URING_CQ_ENTRIES	16384
#define URING_BATCH		256
#define BREAK_TOKEN		1ULL	/* no descriptor lives at 1 */
#define REMOVE_TOKEN		0ULL	/* completions to ignore */
#define POLL_MASK		(POLLIN | POLLOUT | POLLRDHUP)

static struct io_uring ring;
static struct rtlock sqlock;
static uint32_t cqowner;		/* atomic: a reaper holds the CQ */
static uint32_t breaking;		/* atomic: a break NOP is queued */
static bool skip_remove_cqe;		/* IORING_FEAT_CQE_SKIP */

static int uring_init(void)
{
	struct io_uring_params params = {
		.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
		.cq_entries = URING_CQ_ENTRIES,
	};
	int err;

	err = io_uring_queue_init_params(URING_SQ_ENTRIES, &ring, &params);
	if (err < 0)
		return err;
	if (!(params.features & IORING_FEAT_EXT_ARG) ||
	    !(params.features & IORING_FEAT_NODROP)) {
		io_uring_queue_exit(&ring);
		return -ENOSYS;
	}
	skip_remove_cqe = params.features & IORING_FEAT_CQE_SKIP;
	return 0;
}

/* sqlock held.  An SQE, submitting what is queued if the ring is full. */
static struct io_uring_sqe *uring_sqe(void)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&ring)))
		io_uring_submit(&ring);
	return sqe;
}

/* sqlock held. */
static int uring_submit(void)
{
	int ret;

	do
		ret = io_uring_submit(&ring);
	while (ret == -EINTR || ret == -EAGAIN || ret == -EBUSY);
	return ret < 0 ? ret : 0;
}

/* sqlock held. */
static int uring_arm(struct polldesc *pd)
{
	struct io_uring_sqe *sqe = uring_sqe();

	io_uring_prep_poll_multishot(sqe, pd->fd, POLL_MASK);
	io_uring_sqe_set_data64(sqe, pd_token(pd));
	return uring_submit();
}

static int uring_open(struct polldesc *pd)
{
	int err;

	lock(&sqlock);
	err = uring_arm(pd);
	if (!err)
		pd->armed = 1;
	unlock(&sqlock);
	return err;
}

static void uring_close(struct polldesc *pd)
{
	struct io_uring_sqe *sqe;

	lock(&sqlock);
	if (pd->armed) {
		pd->armed = 0;
		sqe = uring_sqe();
		io_uring_prep_cancel64(sqe, pd_token(pd), 0);
		io_uring_sqe_set_data64(sqe, REMOVE_TOKEN);
		if (skip_remove_cqe)
			io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
		uring_submit();
	}
	unlock(&sqlock);
}

static void uring_wakeup(void)
{
	struct io_uring_sqe *sqe;

	if (__atomic_exchange_n(&breaking, 1, __ATOMIC_ACQ_REL))
		return;
	lock(&sqlock);
	sqe = uring_sqe();
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, BREAK_TOKEN);
	uring_submit();
	unlock(&sqlock);
}

/* A multishot poll ended: arm it again unless pd is being closed (the
 * check under sqlock orders us against uring_close's remove). */
static void uring_rearm(struct polldesc *pd, uint64_t token)
{
	lock(&sqlock);
	if (pd->armed && pd_token(pd) == token && uring_arm(pd))
		pd->armed = 0;
	unlock(&sqlock);
}

/* One CQE: the goroutines it readies go on q. */
static int32_t uring_cqe(struct io_uring_cqe *cqe, struct gqueue *q,
			 bool blocking)
{
	uint64_t token = io_uring_cqe_get_data64(cqe);
	struct polldesc *pd;
	int modes = 0;
	int32_t n;

	if (token == REMOVE_TOKEN)
		return 0;
	if (token == BREAK_TOKEN) {
		if (blocking)
			__atomic_store_n(&breaking, 0, __ATOMIC_RELEASE);
		return 0;
	}
	pd = pd_from_token(token);
	if (!pd || cqe->res == -ECANCELED)
		return 0;
	if (cqe->res < 0 || cqe->res & (POLLIN | POLLRDHUP | POLLHUP | POLLERR))
		modes |= PD_MODE_R;
	if (cqe->res < 0 || cqe->res & (POLLOUT | POLLHUP | POLLERR))
		modes |= PD_MODE_W;
	n = netpollready(q, pd, modes);
	if (!(cqe->flags & IORING_CQE_F_MORE) && cqe->res >= 0)
		uring_rearm(pd, token);
	return n;
}

static int32_t uring_reap(struct gqueue *q, bool blocking)
{
	struct io_uring_cqe *cqe;
	unsigned int head, seen = 0;
	int32_t n = 0;

	io_uring_for_each_cqe(&ring, head, cqe) {
		n += uring_cqe(cqe, q, blocking);
		if (++seen == URING_BATCH)
			break;
	}
	io_uring_cq_advance(&ring, seen);
	return n;
}

static void uring_wait(int64_t deadline)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts;
	int64_t d;

	if (deadline < 0) {
		io_uring_wait_cqe(&ring, &cqe);
		return;
	}
	d = deadline - nanotime();
	if (d <= 0)
		return;
	ts.tv_sec = d / 1000000000;
	ts.tv_nsec = d % 1000000000;
	io_uring_wait_cqe_timeout(&ring, &cqe, &ts);	/* -ETIME, -EINTR: fine */
}

/* Any CQE to reap?  A hint, readable without owning the CQ. */
static bool uring_cq_nonempty(void)
{
	return __atomic_load_n(ring.cq.ktail, __ATOMIC_ACQUIRE) !=
	       __atomic_load_n(ring.cq.khead, __ATOMIC_RELAXED);
}

static int32_t uring_poll(int64_t deadline, struct gqueue *q)
{
	int32_t n;

	if (!deadline) {
		if (!uring_cq_nonempty() ||
		    __atomic_exchange_n(&cqowner, 1, __ATOMIC_ACQUIRE))
			return 0;
	} else {
		while (__atomic_exchange_n(&cqowner, 1, __ATOMIC_ACQUIRE))
			sched_yield();
		/* A break whose NOP a non-blocking reaper took: no sleep. */
		if (__atomic_load_n(&breaking, __ATOMIC_ACQUIRE))
			__atomic_store_n(&breaking, 0, __ATOMIC_RELEASE);
		else if (!io_uring_cq_ready(&ring))
			uring_wait(deadline);
	}
	n = uring_reap(q, deadline != 0);
	__atomic_store_n(&cqowner, 0, __ATOMIC_RELEASE);
	return n;
}

/* The ring fd polls readable while the CQ holds entries (goro.ko
 * NETPOLL binds it). */
static int uring_pollfd(void)
{
	return ring.ring_fd;
}

const struct netpoll_ops netpoll_uring_ops = {
	.name	= "uring",
	.init	= uring_init,
	.open	= uring_open,
	.close	= uring_close,
	.poll	= uring_poll,
	.wakeup	= uring_wakeup,
	.pollfd	= uring_pollfd,
};
