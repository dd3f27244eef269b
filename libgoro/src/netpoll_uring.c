// SPDX-License-Identifier: MIT
/*
 * netpoll_uring.c - the io_uring poller (liburing).
 *
 * An fd is watched one of two ways, chosen when it is attached.
 *
 * Readiness (what Go does with epoll; every fd of goro_fd_attach, and
 * every fd when the completion paths below are off or missing).  Each
 * attached fd gets one multishot IORING_OP_POLL_ADD for input and
 * output, tagged with the descriptor's token (netpoll.c): one CQE per
 * wake-up of the file, as EPOLLET gives; the goroutine then does the
 * read(2) or accept4(2) itself.  A multishot poll that ends without
 * IORING_CQE_F_MORE (the kernel may end one, for instance when the
 * completion queue overflows) is armed again by the poll that reaps its
 * last CQE, unless the fd is being closed.  Close cancels the poll by
 * its token before close(2), so that the request's file reference does
 * not keep the socket open.  It is IORING_OP_ASYNC_CANCEL, not
 * POLL_REMOVE: a remove that meets the poll while a wake-up of it is
 * being processed fails with -EALREADY and leaves the poll armed, and
 * with it the socket (a peer waiting for our FIN waited forever), where
 * a cancel marks the request so that its current owner ends it.
 *
 * Completions (pd->compl: the listeners and connected stream sockets
 * the runtime makes, when the kernel has what it takes).  Nothing is
 * armed at attach: a connection that is accepted, answered and closed
 * without ever waiting costs no SQE at all (bench/accept).  The first
 * time a goroutine would wait for input (its syscall said EAGAIN) the
 * descriptor gets a multishot request that then stays armed:
 *
 *  - a listener, IORING_OP_ACCEPT with IORING_ACCEPT_MULTISHOT (5.19):
 *    the kernel accepts each connection as it comes and posts its fd,
 *    queued on the descriptor (accq) for goro_accept, which takes it
 *    without a syscall.  An error (EMFILE) ends the request and is
 *    reported once after the queue, so goro_accept backs off as before;
 *  - a stream socket, IORING_OP_RECV with IORING_RECV_MULTISHOT (6.0)
 *    and IOSQE_BUFFER_SELECT from one ring of provided buffers shared
 *    by every socket (io_uring_register_buf_ring, 5.19): each CQE
 *    carries data in a buffer, queued on the descriptor by buffer id
 *    (rqhead..rqtail, linked through rbnext) until goro_read copies it
 *    out and gives the buffer back to the ring.  One completion, with
 *    the data, replaces the readiness CQE, the read(2), and the read(2)
 *    that would have found the socket empty.  EOF and errors end the
 *    request and are reported once after the data queued before them.
 *
 * Output, and input that cannot use those (no buffer left, a feature
 * turned off mid-run), wait on a one-shot POLL_ADD armed on demand
 * (rpoll, wpoll): in a request/response protocol writes almost never
 * find a full socket buffer, so nothing is armed for them.
 *
 * No byte is lost or reordered between the ring and the caller: while a
 * receive may still post data (mstate not URING_MS_OFF) goro_read takes
 * data only from the queue, and it reads the socket itself only once
 * the request's last CQE (the one without IORING_CQE_F_MORE) has been
 * reaped.  Buffers are bounded per socket: a socket that queues
 * URING_RQ_HIGH buffers nobody reads has its receive cancelled, so the
 * rest waits in the socket (TCP flow control) instead of in buffers
 * the other sockets need; it is armed again once the reader has caught
 * up and found the socket empty.  Listeners likewise cancel at
 * URING_ACCQ_HIGH connections nobody accepted.  When the ring runs out
 * of buffers (more sockets with data in flight than buffers) the
 * receive ends with -ENOBUFS; the reader then reads the socket itself
 * and waits on a one-shot poll until buffers come back: slower, never
 * stuck.  Close cancels every request on the fd (ASYNC_CANCEL_FD |
 * ALL, before close(2), as above), gives the queued buffers back and
 * closes the queued fds; a CQE that comes for a descriptor already
 * closed (its token is stale) still gives its buffer back or closes
 * its fd, so nothing leaks.  The tag in a token's low bits (URING_TAG_*)
 * says which request a CQE is for.
 *
 * The kernel's support is probed once (io_uring_get_probe_ring: the
 * opcodes that came with each feature, IORING_OP_SOCKET in 5.19 and
 * IORING_OP_SEND_ZC in 6.0; the buffer ring's registration), and a
 * request the kernel still refuses with -EINVAL turns its feature off
 * for the rest of the run: descriptors attached after that use
 * readiness, those attached before wait on one-shot polls.
 * GORODEBUG=netpollaccept=0 and netpollrecv=0 turn them off, and
 * netpollbufs=N sizes the buffer ring (Documentation/tuning.rst).
 *
 * Registered files (IOSQE_FIXED_FILE) are not used: a multishot request
 * takes its file reference once, when it is armed, so a fixed file
 * would save nothing per completion, and registering each socket would
 * cost an io_uring_register call per connection (performance.rst).
 *
 * Task work.  The kernel completes a request in the task that submitted
 * it: a receive's data is copied, and its CQE posted, by task work of
 * the M that armed it.  By default the kernel interrupts that M with an
 * IPI if it is running (TWA_SIGNAL), which on this VM host cost more
 * than the receive saved: the io_uring server used 13 us of CPU per echo
 * request where epoll used 7, and perf showed the receive, run at once,
 * spinning on the socket lock the sender's CPU still held.  So the ring
 * is set up with IORING_SETUP_COOP_TASKRUN (5.19; retried without where
 * refused): a sleeping M is still woken for its task work, a running M
 * gets to it at its next entry into the kernel - a syscall, which an M
 * doing I/O makes all the time, or at worst the next timer tick or the
 * sysmon's preemption signal if it runs a goroutine that makes none
 * (net_uring tests that bound).  GORODEBUG=netpollcoop=0 turns it off.
 *
 * Concurrency.  The submission queue is shared by every M: sqlock
 * serialises the SQE writers (attach, close, arm, re-arm, break).  The
 * completion queue has one reaper at a time, `cqowner`: the blocking
 * poll of sched.pollm takes it (it waits for the non-blocking reapers,
 * which hold it for a few loads), a non-blocking poll that finds it
 * taken returns nothing, since the owner is reaping anyway.  The
 * blocking wait uses IORING_FEAT_EXT_ARG's timeout, which needs no SQE,
 * so it never touches the submission queue; kernels without it use
 * epoll instead.  A descriptor's queues and request states are under
 * its lock, taken by the reaper and by the goroutines that read,
 * accept, arm and close; the buffer ring's tail is under brlock, taken
 * inside a descriptor's lock (the order: pd->lock, brlock, sqlock).
 *
 * netpoll_break submits a NOP: it completes inline in the breaker's
 * io_uring_enter and wakes the waiter directly, which an eventfd poll
 * would do through the task that armed it.  `breaking` makes any number
 * of breaks before the next blocking poll cost one NOP, and only a
 * blocking poll clears it: a non-blocking reaper that got the CQ first
 * may reap the NOP, and the blocking poll that comes next then sees
 * `breaking` still set and does not sleep.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <liburing.h>

#include "netpoll.h"

#define URING_SQ_ENTRIES	256
#define URING_CQ_ENTRIES	16384
#define URING_BATCH		256
#define BREAK_TOKEN		1ULL	/* no descriptor lives at 1 */
#define REMOVE_TOKEN		0ULL	/* completions to ignore */
#define POLL_MASK		(POLLIN | POLLOUT | POLLRDHUP | POLLPRI)
#define URING_POLL_HUP		(POLLRDHUP | POLLHUP | POLLERR | POLLPRI)

/* What a CQE is for: the low bits of its token (PD_TOKEN_TAG_MASK). */
enum {
	URING_TAG_POLL,		/* readiness: the multishot POLL_ADD */
	URING_TAG_ACCEPT,	/* multishot accept */
	URING_TAG_RECV,		/* multishot recv, provided buffers */
	URING_TAG_RPOLL,	/* one-shot POLLIN */
	URING_TAG_WPOLL,	/* one-shot POLLOUT */
};

/* pd->mstate: the descriptor's multishot recv or accept. */
enum {
	URING_MS_OFF,		/* none, and no CQE of one left to reap */
	URING_MS_ARMED,
	URING_MS_CANCEL,	/* cancelled, its last CQE not reaped yet */
};

#define URING_EOF		1	/* pd->rerr: end of file */
#define URING_BGID		0	/* the runtime's buffer group */
#define URING_BUF_SIZE		4096
#define URING_BUFS_MIN		8
#define URING_BUFS_MAX		32768	/* buffer ids are 16 bits, one spare */
#define URING_BUF_RESERVE	4	/* arm a recv only with more free */
#define URING_RQ_HIGH		16	/* buffers queued on one socket */
#define URING_ACCQ_HIGH		128	/* fds queued on one listener */

int32_t debug_netpollaccept = 1;
int32_t debug_netpollrecv = 1;
int32_t debug_netpollbufs = 512;
int32_t debug_netpollcoop = 1;

static struct io_uring ring;
static struct rtlock sqlock;
static uint32_t cqowner;		/* atomic: a reaper holds the CQ */
static uint32_t breaking;		/* atomic: a break NOP is queued */
static bool skip_remove_cqe;		/* IORING_FEAT_CQE_SKIP */
static bool accept_ok;			/* atomic: multishot accept works */
static bool recv_ok;			/* atomic: multishot recv works */

/* The provided buffers: nbufs of URING_BUF_SIZE at bufmem, their ring,
 * and per buffer id its length and link while queued on a socket. */
static struct io_uring_buf_ring *bufring;
static struct rtlock brlock;		/* the ring's tail */
static char *bufmem;
static uint32_t nbufs;
static int32_t bufs_free;		/* atomic, a hint: in the ring */
static uint32_t *rblen;
static uint16_t *rbnext;

/* ---------------------------------------------------------------------
 * The submission queue
 * ------------------------------------------------------------------- */

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

static inline uint64_t uring_token(struct polldesc *pd, int tag)
{
	return pd_token(pd) | (uint64_t)tag;
}

/* ---------------------------------------------------------------------
 * Provided buffers
 * ------------------------------------------------------------------- */

/* The kernel wrote buffer bid between our release and this acquire:
 * TSan sees neither side, so say so. */
static inline void buf_tsan_release(uint16_t bid)
{
	pd_tsan_release(&rblen[bid]);
}

static inline void buf_tsan_acquire(uint16_t bid)
{
	pd_tsan_acquire(&rblen[bid]);
}

static inline char *buf_addr(uint16_t bid)
{
	return bufmem + (size_t)bid * URING_BUF_SIZE;
}

/* Give n buffers back to the ring. */
static void bufs_put(const uint16_t *bids, uint32_t n)
{
	int mask = io_uring_buf_ring_mask(nbufs);

	if (!n)
		return;
	lock(&brlock);
	for (uint32_t i = 0; i < n; i++) {
		buf_tsan_release(bids[i]);
		io_uring_buf_ring_add(bufring, buf_addr(bids[i]),
				      URING_BUF_SIZE, bids[i], mask, (int)i);
	}
	io_uring_buf_ring_advance(bufring, (int)n);
	unlock(&brlock);
	__atomic_add_fetch(&bufs_free, (int32_t)n, __ATOMIC_RELAXED);
}

/* The ring of provided buffers, or recv_ok stays false. */
static void bufs_init(void)
{
	struct io_uring_buf_reg reg = { .bgid = URING_BGID };
	uint16_t bid;
	size_t rsz;
	uint32_t n = (uint32_t)debug_netpollbufs;

	/* a power of two the kernel takes (at most 32768 entries) */
	if (n < URING_BUFS_MIN)
		n = URING_BUFS_MIN;
	if (n > URING_BUFS_MAX)
		n = URING_BUFS_MAX;
	while (n & (n - 1))
		n &= n - 1;
	rsz = (n * sizeof(struct io_uring_buf) + 4095) & ~4095UL;
	bufring = mmap(NULL, rsz, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (bufring == MAP_FAILED)
		goto out_none;
	/* untouched pages cost nothing until a receive writes them */
	bufmem = mmap(NULL, (size_t)n * URING_BUF_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (bufmem == MAP_FAILED)
		goto out_unmap_ring;
	rblen = calloc(n, sizeof(*rblen));
	rbnext = calloc(n, sizeof(*rbnext));
	if (!rblen || !rbnext)
		goto out_free;
	io_uring_buf_ring_init(bufring);
	reg.ring_addr = (uint64_t)(uintptr_t)bufring;
	reg.ring_entries = n;
	if (io_uring_register_buf_ring(&ring, &reg, 0) < 0)
		goto out_free;
	nbufs = n;
	for (bid = 0; bid < n; bid++)
		io_uring_buf_ring_add(bufring, buf_addr(bid), URING_BUF_SIZE,
				      bid, io_uring_buf_ring_mask(n), bid);
	io_uring_buf_ring_advance(bufring, (int)n);
	bufs_free = (int32_t)n;
	recv_ok = true;
	return;

out_free:
	free(rblen);
	free(rbnext);
	rblen = NULL;
	rbnext = NULL;
	munmap(bufmem, (size_t)n * URING_BUF_SIZE);
	bufmem = NULL;
out_unmap_ring:
	munmap(bufring, rsz);
out_none:
	bufring = NULL;
}

/* pd->lock held.  Queue buffer bid holding len bytes on pd. */
static void rq_push(struct polldesc *pd, uint16_t bid, uint32_t len)
{
	rblen[bid] = len;
	rbnext[bid] = PD_BID_NONE;
	if (pd->rqtail != PD_BID_NONE)
		rbnext[pd->rqtail] = bid;
	else
		pd->rqhead = bid;
	pd->rqtail = bid;
	pd->rqlen++;
}

/* pd->lock held.  Copy up to len queued bytes into buf; the buffers
 * emptied go to freed[] (at most URING_RQ_FREE of them per call). */
#define URING_RQ_FREE	32
static size_t rq_copy(struct polldesc *pd, char *buf, size_t len,
		      uint16_t *freed, uint32_t *nfreed)
{
	size_t done = 0;

	while (done < len && pd->rqlen && *nfreed < URING_RQ_FREE) {
		uint16_t bid = pd->rqhead;
		size_t n = rblen[bid] - pd->rqoff;

		if (n > len - done)
			n = len - done;
		memcpy(buf + done, buf_addr(bid) + pd->rqoff, n);
		done += n;
		pd->rqoff += (uint32_t)n;
		if (pd->rqoff < rblen[bid])
			break;
		pd->rqoff = 0;
		pd->rqhead = rbnext[bid];
		if (pd->rqhead == PD_BID_NONE)
			pd->rqtail = PD_BID_NONE;
		pd->rqlen--;
		freed[(*nfreed)++] = bid;
	}
	return done;
}

/* pd->lock held.  Give every queued buffer back. */
static void rq_drain(struct polldesc *pd)
{
	uint16_t freed[URING_RQ_FREE];
	uint32_t n = 0;

	while (pd->rqlen) {
		uint16_t bid = pd->rqhead;

		pd->rqhead = rbnext[bid];
		pd->rqlen--;
		freed[n++] = bid;
		if (n == URING_RQ_FREE) {
			bufs_put(freed, n);
			n = 0;
		}
	}
	bufs_put(freed, n);
	pd->rqhead = pd->rqtail = PD_BID_NONE;
	pd->rqoff = 0;
}

/* ---------------------------------------------------------------------
 * Arming and cancelling
 * ------------------------------------------------------------------- */

/* sqlock held. */
static int uring_arm_poll(struct polldesc *pd)
{
	struct io_uring_sqe *sqe = uring_sqe();

	io_uring_prep_poll_multishot(sqe, pd->fd, POLL_MASK);
	io_uring_sqe_set_data64(sqe, uring_token(pd, URING_TAG_POLL));
	return uring_submit();
}

/* Submit one request for pd: a one-shot poll for mask, a multishot
 * accept or a multishot recv (tag).  pd->lock held, for the fd. */
static int uring_arm_one(struct polldesc *pd, int tag, unsigned int mask)
{
	struct io_uring_sqe *sqe;
	int err;

	lock(&sqlock);
	sqe = uring_sqe();
	switch (tag) {
	case URING_TAG_ACCEPT:
		io_uring_prep_multishot_accept(sqe, pd->fd, NULL, NULL,
					       SOCK_NONBLOCK | SOCK_CLOEXEC);
		break;
	case URING_TAG_RECV:
		io_uring_prep_recv_multishot(sqe, pd->fd, NULL, 0, 0);
		io_uring_sqe_set_flags(sqe, IOSQE_BUFFER_SELECT);
		sqe->buf_group = URING_BGID;
		break;
	default:
		io_uring_prep_poll_add(sqe, pd->fd, mask);
		break;
	}
	io_uring_sqe_set_data64(sqe, uring_token(pd, tag));
	err = uring_submit();
	unlock(&sqlock);
	return err;
}

/* sqlock held.  Cancel one request by its token, or (token 0) every
 * request on pd->fd (IORING_ASYNC_CANCEL_FD, 5.19: only descriptors on
 * the completion paths, which need newer kernels, use it). */
static void uring_prep_cancel(struct polldesc *pd, uint64_t token)
{
	struct io_uring_sqe *sqe = uring_sqe();

	if (token)
		io_uring_prep_cancel64(sqe, token, 0);
	else
		io_uring_prep_cancel_fd(sqe, pd->fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, REMOVE_TOKEN);
	if (skip_remove_cqe)
		io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
	uring_submit();
}

static void uring_cancel(struct polldesc *pd, uint64_t token)
{
	lock(&sqlock);
	uring_prep_cancel(pd, token);
	unlock(&sqlock);
}

static bool uring_recv_ok(void)
{
	return __atomic_load_n(&recv_ok, __ATOMIC_RELAXED);
}

static bool uring_accept_ok(void)
{
	return __atomic_load_n(&accept_ok, __ATOMIC_RELAXED);
}

/* pd->lock held.  Wait for input on a completion descriptor: the
 * multishot request of its kind, or a one-shot poll. */
static void uring_arm_input(struct polldesc *pd)
{
	bool ms;

	if (pd->mstate != URING_MS_OFF || pd->rpoll || pd->rqlen || pd->rerr ||
	    pd->acclen)
		return;	/* something will come, or is there */
	if (pd->kind & PD_KIND_LISTENER)
		ms = uring_accept_ok();
	else
		ms = uring_recv_ok() && !pd->nobufs &&
		     __atomic_load_n(&bufs_free, __ATOMIC_RELAXED) >
		     URING_BUF_RESERVE;
	pd->nobufs = false;	/* try the buffers again next time */
	if (ms && !uring_arm_one(pd, pd->kind & PD_KIND_LISTENER ?
				 URING_TAG_ACCEPT : URING_TAG_RECV, 0)) {
		pd->mstate = URING_MS_ARMED;
		return;
	}
	if (!uring_arm_one(pd, URING_TAG_RPOLL, POLLIN | POLLRDHUP))
		pd->rpoll = true;
}

static void uring_arm(struct polldesc *pd, int mode)
{
	if (!pd->compl)
		return;		/* its multishot poll watches */
	lock(&pd->lock);
	if (pd->closing) {
		/* pd_checkerr fails the wait */
	} else if (mode == PD_MODE_R) {
		uring_arm_input(pd);
	} else if (!pd->wpoll &&
		   !uring_arm_one(pd, URING_TAG_WPOLL, POLLOUT)) {
		pd->wpoll = true;
	}
	unlock(&pd->lock);
}

/* ---------------------------------------------------------------------
 * What completions left for readers and acceptors
 * ------------------------------------------------------------------- */

static ssize_t uring_read(struct polldesc *pd, void *buf, size_t len)
{
	uint16_t freed[URING_RQ_FREE];
	uint32_t nfreed = 0;
	ssize_t n;

	lock(&pd->lock);
	if (pd->rqlen) {
		n = (ssize_t)rq_copy(pd, buf, len, freed, &nfreed);
		bufs_put(freed, nfreed);
	} else if (pd->rerr) {
		n = pd->rerr == URING_EOF ? 0 : pd->rerr;
		pd->rerr = 0;
	} else if (pd->mstate != URING_MS_OFF) {
		n = -EAGAIN;	/* the receive will post */
	} else {
		n = -EOPNOTSUPP;	/* nothing in flight: read(2) */
	}
	unlock(&pd->lock);
	return n;
}

static int uring_accept(struct polldesc *pd)
{
	int fd;

	lock(&pd->lock);
	if (pd->acclen) {
		fd = pd->accq[pd->acchead];
		pd->acchead = (pd->acchead + 1) % pd->acccap;
		pd->acclen--;
	} else if (pd->rerr) {
		fd = pd->rerr;
		pd->rerr = 0;
	} else if (pd->mstate != URING_MS_OFF) {
		fd = -EAGAIN;
	} else {
		fd = -EOPNOTSUPP;
	}
	unlock(&pd->lock);
	return fd;
}

/* pd->lock held.  Queue an accepted fd; false if out of memory. */
static bool accq_push(struct polldesc *pd, int fd)
{
	if (pd->acclen == pd->acccap) {
		uint32_t cap = pd->acccap ? pd->acccap * 2 : 16;
		int *q = malloc(cap * sizeof(*q));

		if (!q)
			return false;
		for (uint32_t i = 0; i < pd->acclen; i++)
			q[i] = pd->accq[(pd->acchead + i) % pd->acccap];
		free(pd->accq);
		pd->accq = q;
		pd->acccap = cap;
		pd->acchead = 0;
	}
	pd->accq[(pd->acchead + pd->acclen) % pd->acccap] = fd;
	pd->acclen++;
	return true;
}

/* ---------------------------------------------------------------------
 * Attach and close
 * ------------------------------------------------------------------- */

static int uring_open(struct polldesc *pd)
{
	int err;

	if ((pd->kind & PD_KIND_STREAM && uring_recv_ok()) ||
	    (pd->kind & PD_KIND_LISTENER && uring_accept_ok())) {
		lock(&pd->lock);
		pd->compl = true;
		pd->mstate = URING_MS_OFF;
		pd->rpoll = pd->wpoll = pd->nobufs = false;
		pd->rerr = 0;
		pd->rqhead = pd->rqtail = PD_BID_NONE;
		pd->rqlen = pd->rqoff = 0;
		pd->acchead = pd->acclen = 0;
		unlock(&pd->lock);
		return 0;	/* armed when first waited for */
	}
	lock(&sqlock);
	err = uring_arm_poll(pd);
	if (!err)
		pd->armed = 1;
	unlock(&sqlock);
	return err;
}

static void uring_close_compl(struct polldesc *pd)
{
	bool live;

	lock(&pd->lock);
	live = pd->mstate != URING_MS_OFF || pd->rpoll || pd->wpoll;
	rq_drain(pd);
	while (pd->acclen) {
		close(pd->accq[pd->acchead]);
		pd->acchead = (pd->acchead + 1) % pd->acccap;
		pd->acclen--;
	}
	pd->rerr = 0;
	unlock(&pd->lock);
	/* pd->closing is set: CQEs still to come free what they bring */
	if (live)
		uring_cancel(pd, 0);
}

static void uring_close(struct polldesc *pd)
{
	if (pd->compl) {
		uring_close_compl(pd);
		return;
	}
	lock(&sqlock);
	if (pd->armed) {
		pd->armed = 0;
		uring_prep_cancel(pd, uring_token(pd, URING_TAG_POLL));
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

/* ---------------------------------------------------------------------
 * Completions
 * ------------------------------------------------------------------- */

/* A multishot poll ended: arm it again unless pd is being closed (the
 * check under sqlock orders us against uring_close's cancel). */
static void uring_rearm(struct polldesc *pd, uint64_t token)
{
	lock(&sqlock);
	if (pd->armed && uring_token(pd, URING_TAG_POLL) == token &&
	    uring_arm_poll(pd))
		pd->armed = 0;
	unlock(&sqlock);
}

/* Readiness: a CQE of the multishot poll. */
static int32_t uring_poll_cqe(struct polldesc *pd, uint64_t token,
			      struct io_uring_cqe *cqe, struct gqueue *q)
{
	int modes = 0;
	int32_t n;

	if (!pd || cqe->res == -ECANCELED)
		return 0;
	if (cqe->res < 0 || cqe->res & (POLLIN | URING_POLL_HUP))
		modes |= PD_MODE_R;
	if (cqe->res < 0 || cqe->res & URING_POLL_HUP)
		modes |= PD_MODE_HUP;
	if (cqe->res < 0 || cqe->res & (POLLOUT | POLLHUP | POLLERR))
		modes |= PD_MODE_W;
	n = netpollready(q, pd, modes);
	if (!(cqe->flags & IORING_CQE_F_MORE) && cqe->res >= 0)
		uring_rearm(pd, token);
	return n;
}

/* pd->lock held: is this CQE still for pd's current, open user? */
static bool uring_current(struct polldesc *pd, uint64_t token)
{
	return !pd->closing &&
	       pd_token(pd) == (token & ~PD_TOKEN_TAG_MASK);
}

/* A one-shot poll fired: wake the goroutine waiting for its mode. */
static int32_t uring_oneshot_cqe(struct polldesc *pd, uint64_t token,
				 struct io_uring_cqe *cqe, struct gqueue *q,
				 int mode)
{
	if (!pd)
		return 0;
	lock(&pd->lock);
	if (!uring_current(pd, token)) {
		unlock(&pd->lock);
		return 0;
	}
	if (mode == PD_MODE_R)
		pd->rpoll = false;
	else
		pd->wpoll = false;
	unlock(&pd->lock);
	return cqe->res == -ECANCELED ? 0 : netpollready(q, pd, mode);
}

/* A receive posted: data in a buffer, EOF, an error, or its end. */
static int32_t uring_recv_cqe(struct polldesc *pd, uint64_t token,
			      struct io_uring_cqe *cqe, struct gqueue *q)
{
	bool buf = cqe->flags & IORING_CQE_F_BUFFER;
	uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
	bool cancel = false;

	if (buf) {
		buf_tsan_acquire(bid);
		__atomic_sub_fetch(&bufs_free, 1, __ATOMIC_RELAXED);
	}
	if (!pd)
		goto out_stale;
	lock(&pd->lock);
	if (!uring_current(pd, token)) {
		unlock(&pd->lock);
		goto out_stale;
	}
	if (buf && cqe->res > 0) {
		rq_push(pd, bid, (uint32_t)cqe->res);
		buf = false;
	} else if (cqe->res == 0) {
		pd->rerr = URING_EOF;
	} else if (cqe->res == -ENOBUFS) {
		pd->nobufs = true;	/* read(2), then a one-shot poll */
	} else if (cqe->res == -EINVAL) {
		__atomic_store_n(&recv_ok, false, __ATOMIC_RELAXED);
	} else if (cqe->res < 0 && cqe->res != -ECANCELED) {
		pd->rerr = cqe->res;
	}
	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		pd->mstate = URING_MS_OFF;
	} else if (pd->rqlen >= URING_RQ_HIGH &&
		   pd->mstate == URING_MS_ARMED) {
		pd->mstate = URING_MS_CANCEL;
		cancel = true;
	}
	unlock(&pd->lock);
	if (buf)
		bufs_put(&bid, 1);
	if (cancel)
		uring_cancel(pd, token);
	return netpollready(q, pd, PD_MODE_R);

out_stale:
	if (buf)
		bufs_put(&bid, 1);
	return 0;
}

/* A multishot accept posted: a new fd, an error, or its end. */
static int32_t uring_accept_cqe(struct polldesc *pd, uint64_t token,
				struct io_uring_cqe *cqe, struct gqueue *q)
{
	int fd = cqe->res;
	bool cancel = false;

	if (!pd)
		goto out_stale;
	lock(&pd->lock);
	if (!uring_current(pd, token)) {
		unlock(&pd->lock);
		goto out_stale;
	}
	if (fd >= 0) {
		if (accq_push(pd, fd))
			fd = -1;
	} else if (fd == -EINVAL) {
		__atomic_store_n(&accept_ok, false, __ATOMIC_RELAXED);
	} else if (fd != -ECANCELED) {
		pd->rerr = fd;	/* EMFILE: goro_accept backs off */
	}
	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		pd->mstate = URING_MS_OFF;
	} else if (pd->acclen >= URING_ACCQ_HIGH &&
		   pd->mstate == URING_MS_ARMED) {
		/* nobody accepts: leave the rest in the backlog */
		pd->mstate = URING_MS_CANCEL;
		cancel = true;
	}
	unlock(&pd->lock);
	if (fd >= 0)
		close(fd);	/* no memory to queue it: refuse it */
	if (cancel)
		uring_cancel(pd, token);
	return netpollready(q, pd, PD_MODE_R);

out_stale:
	if (fd >= 0)
		close(fd);	/* accepted for a listener now closed */
	return 0;
}

/* One CQE: the goroutines it readies go on q. */
static int32_t uring_cqe(struct io_uring_cqe *cqe, struct gqueue *q,
			 bool blocking)
{
	uint64_t token = io_uring_cqe_get_data64(cqe);
	struct polldesc *pd;

	if (token == REMOVE_TOKEN)
		return 0;
	if (token == BREAK_TOKEN) {
		if (blocking)
			__atomic_store_n(&breaking, 0, __ATOMIC_RELEASE);
		return 0;
	}
	/* NULL if stale; the buffer or fd a CQE brings is freed anyway */
	pd = pd_from_token(token);
	switch (token & PD_TOKEN_TAG_MASK) {
	case URING_TAG_ACCEPT:
		return uring_accept_cqe(pd, token, cqe, q);
	case URING_TAG_RECV:
		return uring_recv_cqe(pd, token, cqe, q);
	case URING_TAG_RPOLL:
		return uring_oneshot_cqe(pd, token, cqe, q, PD_MODE_R);
	case URING_TAG_WPOLL:
		return uring_oneshot_cqe(pd, token, cqe, q, PD_MODE_W);
	default:
		return uring_poll_cqe(pd, token, cqe, q);
	}
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

/* ---------------------------------------------------------------------
 * Setup
 * ------------------------------------------------------------------- */

/* Which completion paths this kernel has: the opcodes that came with
 * them (IORING_OP_SOCKET with multishot accept in 5.19, SEND_ZC with
 * multishot recv in 6.0), then the buffer ring's registration. */
static void uring_probe(void)
{
	struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);

	if (!probe)
		return;
	accept_ok = debug_netpollaccept &&
		    io_uring_opcode_supported(probe, IORING_OP_SOCKET);
	if (debug_netpollrecv &&
	    io_uring_opcode_supported(probe, IORING_OP_SEND_ZC))
		bufs_init();
	io_uring_free_probe(probe);
}

static int uring_init(void)
{
	struct io_uring_params params = {
		.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
		.cq_entries = URING_CQ_ENTRIES,
	};
	int err;

	if (debug_netpollcoop)	/* 5.19: else retried without */
		params.flags |= IORING_SETUP_COOP_TASKRUN;
	err = io_uring_queue_init_params(URING_SQ_ENTRIES, &ring, &params);
	if (err == -EINVAL && debug_netpollcoop) {
		params.flags &= ~IORING_SETUP_COOP_TASKRUN;
		err = io_uring_queue_init_params(URING_SQ_ENTRIES, &ring,
						 &params);
	}
	if (err < 0)
		return err;
	if (!(params.features & IORING_FEAT_EXT_ARG) ||
	    !(params.features & IORING_FEAT_NODROP)) {
		io_uring_queue_exit(&ring);
		return -ENOSYS;
	}
	skip_remove_cqe = params.features & IORING_FEAT_CQE_SKIP;
	uring_probe();
	return 0;
}

/* Which completion paths run (tests): bit 0 accept, bit 1 recv. */
int netpoll_uring_features(void)
{
	return (uring_accept_ok() ? 1 : 0) | (uring_recv_ok() ? 2 : 0);
}

void netpoll_uring_bufstat(int32_t *nfree, uint32_t *total)
{
	*nfree = __atomic_load_n(&bufs_free, __ATOMIC_RELAXED);
	*total = nbufs;
}

const struct netpoll_ops netpoll_uring_ops = {
	.name	= "uring",
	.init	= uring_init,
	.open	= uring_open,
	.close	= uring_close,
	.poll	= uring_poll,
	.wakeup	= uring_wakeup,
	.pollfd	= uring_pollfd,
	.read	= uring_read,
	.accept	= uring_accept,
	.arm	= uring_arm,
};
