// SPDX-License-Identifier: MIT
/*
 * netpoll.c - the network poller: poll descriptors, waiting for I/O,
 * deadlines and close (Go's netpoll.go, in C).
 *
 * Model.  Every fd attached to the runtime (goro_fd_attach and the
 * sockets the I/O API makes) has a struct polldesc, registered once with
 * the poller for both directions, edge-triggered.  A goroutine does the
 * non-blocking syscall itself; on EAGAIN it waits on the descriptor's
 * read or write slot (rg/wg) and its M goes on to run other goroutines.
 * The poller - io_uring (netpoll_uring.c) or epoll (netpoll_epoll.c),
 * behind struct netpoll_ops - turns readiness events into a list of
 * goroutines to run; the scheduler (proc.c) collects that list without
 * blocking before it steals work, every 61st schedule, and, blocking
 * until the earliest timer, on the one idle M that would otherwise sleep
 * for timers (sched.pollm).  netpoll_break() ends that blocking wait
 * when an earlier timer or new work appears.
 *
 * The slots (Go's rg/wg) hold PD_NIL, PD_READY, PD_WAIT or the waiting
 * G, and change only by CAS:
 *
 *  1. the goroutine, after EAGAIN, CASes PD_READY -> PD_NIL (an event
 *     came since its last try: try again) or PD_NIL -> PD_WAIT;
 *  2. it parks; g0 CASes PD_WAIT -> G in the unlockf (blockcommit), so
 *     a waker sees the G only once its context is saved;
 *  3. an event makes the slot PD_READY, taking out the G if there was
 *     one; a deadline or close makes it PD_NIL, also taking out the G;
 *  4. the woken goroutine swaps the slot to PD_NIL, and retries the
 *     syscall if it was PD_READY, else reports the error (pd_checkerr).
 *
 * An event that arrives between EAGAIN and step 1 is kept as PD_READY,
 * so edge-triggered notification loses nothing.  One reader and one
 * writer wait at a time: rmu and wmu serialise them (Go's fdMutex).
 *
 * Deadlines are runtime timers (time.c) whose function, with the
 * descriptor's lock, marks the deadline expired (-1) and takes the G
 * out; a sequence number (rseq/wseq) makes a timer that fires after the
 * deadline changed a no-op, so deltimer never has to win a race.
 *
 * Close.  pd->ref counts the API calls using the descriptor; goro_close
 * sets PD_CLOSING in it (new calls now fail with -EBADF), wakes the
 * waiters (-ECANCELED), waits until the last user is gone, deregisters
 * the fd, stops the timers and only then calls close(2): no fd number is
 * reused while a goroutine may still issue a syscall on it.
 *
 * Descriptors are never freed: a closed one returns to a free list with
 * fdseq bumped.  Pollers carry a token - the pointer with fdseq's low
 * bits on top - and an event whose tag no longer matches is dropped, so
 * a late event for a closed fd never wakes the goroutines of its
 * successor (Go's fdseq tagging).  fd -> descriptor is a two-level table
 * whose second-level arrays, once allocated, stay: lookups take no lock.
 *
 * Deadlock detection (proc.c checkdead) never fires while a goroutine
 * waits for I/O: it waits for the outside world, as in Go.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netpoll.h"
#include "probes.h"

int32_t debug_netpoll;

/* GORODEBUG=netpoll=auto|uring|epoll: the value's number, or -1. */
int32_t netpoll_mode_byname(const char *s)
{
	static const char *const names[] = { "auto", "uring", "epoll" };

	for (int32_t i = 0; i < 3; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

static const struct netpoll_ops *pollops;	/* set once, by netpoll_init */
static bool inited;				/* atomic */
static struct rtlock initlock;
int32_t netpoll_nwaiters;			/* atomic: Gs parked on I/O */

/* fd -> polldesc */
#define PDTAB_L2	4096
#define PDTAB_L1	1024
static struct polldesc **pdtab[PDTAB_L1];
static struct rtlock pdtablock;

static struct rtlock pdcachelock;
static struct polldesc *pdcache;

#define TOKEN_PTR_MASK	(((1ULL << 48) - 1) & ~PD_TOKEN_TAG_MASK)

uint64_t pd_token(struct polldesc *pd)
{
	uint64_t seq = __atomic_load_n(&pd->fdseq, __ATOMIC_ACQUIRE);

	return (uint64_t)(uintptr_t)pd | (seq & 0xffff) << 48;
}

/* The descriptor a poller event is for, or NULL if it is stale. */
struct polldesc *pd_from_token(uint64_t token)
{
	struct polldesc *pd = (void *)(uintptr_t)(token & TOKEN_PTR_MASK);

	pd_tsan_acquire(pd);
	if (!pd || (__atomic_load_n(&pd->fdseq, __ATOMIC_ACQUIRE) & 0xffff) !=
		   token >> 48)
		return NULL;
	return pd;
}

bool netpoll_inited(void)
{
	return __atomic_load_n(&inited, __ATOMIC_ACQUIRE);
}

static int netpoll_init(void)
{
	int err = 0;

	if (netpoll_inited())
		return 0;
	lock(&initlock);
	if (netpoll_inited())
		goto out_unlock;
	err = -ENOSYS;
	if (debug_netpoll != NETPOLL_EPOLL) {
		err = netpoll_uring_ops.init();
		if (!err)
			pollops = &netpoll_uring_ops;
	}
	if (err && debug_netpoll != NETPOLL_URING) {
		err = netpoll_epoll_ops.init();
		if (!err)
			pollops = &netpoll_epoll_ops;
	}
	/* goro.ko NETPOLL, if it has it: before inited, which the
	 * scheduler reads to choose how the poll M sleeps */
	if (!err)
		kmod_netpoll_bind(pollops->pollfd());
	if (!err)
		__atomic_store_n(&inited, true, __ATOMIC_RELEASE);
out_unlock:
	unlock(&initlock);
	/* The M sleeping for timers does not watch I/O yet: let it pick
	 * the poller up. */
	if (!err)
		wakenetpoller(1);
	return err;
}

/* Which poller runs: "uring", "epoll" or NULL before the first attach. */
const char *netpoll_name(void)
{
	return netpoll_inited() ? pollops->name : NULL;
}

int32_t netpoll(int64_t deadline, struct gqueue *q)
{
	int32_t n;

	if (!netpoll_inited())
		return 0;
	n = pollops->poll(deadline, q);
	if (n)
		GORO_PROBE2(netpoll_wake, n, deadline != 0);
	return n;
}

void netpoll_break(void)
{
	if (netpoll_inited())
		pollops->wakeup();
}

/* ---------------------------------------------------------------------
 * The slots (see the top comment, steps 1-4)
 * ------------------------------------------------------------------- */

static inline uintptr_t *pd_slot(struct polldesc *pd, int mode)
{
	return mode == PD_MODE_R ? &pd->rg : &pd->wg;
}

/* Step 3: take the waiting G out, leaving PD_READY (an event) or
 * PD_NIL (a deadline or close).  Returns the G to ready, or NULL. */
static struct g *netpollunblock(struct polldesc *pd, int mode, bool ioready)
{
	uintptr_t *gpp = pd_slot(pd, mode);
	uintptr_t old = __atomic_load_n(gpp, __ATOMIC_ACQUIRE);

	for (;;) {
		uintptr_t new = ioready ? PD_READY : PD_NIL;

		if (old == PD_READY)
			return NULL;
		if (old == PD_NIL && !ioready)
			return NULL;
		if (__atomic_compare_exchange_n(gpp, &old, new, false,
						__ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return old == PD_WAIT ? NULL : (struct g *)old;
	}
}

static void netpollgoready(struct g *gp)
{
	if (!gp)
		return;
	__atomic_sub_fetch(&netpoll_nwaiters, 1, __ATOMIC_RELEASE);
	goready(gp);
}

/* Pollers: an event for pd; queue the goroutines it wakes on q. */
int32_t netpollready(struct gqueue *q, struct polldesc *pd, int modes)
{
	int32_t n = 0;

	/* before the slot's CAS: a reader that sees the slot sees this */
	if (modes & PD_MODE_HUP)
		__atomic_store_n(&pd->rdhup, true, __ATOMIC_RELEASE);
	for (int mode = PD_MODE_R; mode <= PD_MODE_W; mode <<= 1) {
		struct g *gp;

		if (!(modes & mode))
			continue;
		gp = netpollunblock(pd, mode, true);
		if (!gp)
			continue;
		__atomic_sub_fetch(&netpoll_nwaiters, 1, __ATOMIC_RELEASE);
		gqueue_push(q, gp);
		n++;
	}
	return n;
}

/* Step 2, on g0 (gopark's unlockf). */
static bool netpollblockcommit(struct g *gp, void *arg)
{
	uintptr_t old = PD_WAIT;

	if (!__atomic_compare_exchange_n((uintptr_t *)arg, &old,
					 (uintptr_t)gp, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return false;
	__atomic_add_fetch(&netpoll_nwaiters, 1, __ATOMIC_RELEASE);
	return true;
}

/* -ECANCELED once goro_close began, -ETIMEDOUT past the deadline. */
static int pd_checkerr(struct polldesc *pd, int mode)
{
	int64_t d;

	if (__atomic_load_n(&pd->closing, __ATOMIC_ACQUIRE))
		return -ECANCELED;
	d = __atomic_load_n(mode == PD_MODE_R ? &pd->rd : &pd->wd,
			    __ATOMIC_ACQUIRE);
	return d < 0 ? -ETIMEDOUT : 0;
}

/* Steps 1, 2 and 4: true if an event came (retry the syscall). */
static bool netpollblock(struct polldesc *pd, int mode)
{
	uintptr_t *gpp = pd_slot(pd, mode);
	uintptr_t old;

	for (;;) {
		old = PD_READY;
		if (__atomic_compare_exchange_n(gpp, &old, PD_NIL, false,
						__ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return true;
		old = PD_NIL;
		if (__atomic_compare_exchange_n(gpp, &old, PD_WAIT, false,
						__ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			break;
		if (old != PD_READY && old != PD_NIL)
			throw("netpollblock: double wait");
	}
	/* A deadline or close that came before PD_WAIT was set saw no
	 * waiter: check again now that it would see us. */
	if (!pd_checkerr(pd, mode))
		gopark(netpollblockcommit, gpp, WAIT_IO_WAIT);
	old = __atomic_exchange_n(gpp, PD_NIL, __ATOMIC_ACQ_REL);
	if (old > PD_WAIT)
		throw("netpollblock: corrupted state");
	return old == PD_READY;
}

int pd_prepare(struct polldesc *pd, int mode)
{
	return pd_checkerr(pd, mode);
}

/* An event for mode will come (a poller that arms on demand arms). */
void pd_arm(struct polldesc *pd, int mode)
{
	if (pollops->arm)
		pollops->arm(pd, mode);
}

/* Wait until pd is ready for mode: 0, -ETIMEDOUT or -ECANCELED. */
int pd_wait(struct polldesc *pd, int mode)
{
	int err = pd_checkerr(pd, mode);

	if (err)
		return err;
	do {
		pd_arm(pd, mode);
		if (netpollblock(pd, mode))
			return 0;
		err = pd_checkerr(pd, mode);
	} while (!err);
	return err;
}

/* What the poller's completions left for a reader (netpoll_ops.read). */
ssize_t pd_read(struct polldesc *pd, void *buf, size_t len)
{
	if (!pd->compl || !pollops->read)
		return -EOPNOTSUPP;
	return pollops->read(pd, buf, len);
}

/* An fd the poller accepted for a listener (netpoll_ops.accept). */
int pd_accept(struct polldesc *pd)
{
	if (!pd->compl || !pollops->accept)
		return -EOPNOTSUPP;
	return pollops->accept(pd);
}

/* ---------------------------------------------------------------------
 * Deadlines
 * ------------------------------------------------------------------- */

static void pd_deadline_fire(struct polldesc *pd, int mode, uintptr_t seq)
{
	struct g *gp = NULL;

	lock(&pd->lock);
	if (mode == PD_MODE_R && seq == pd->rseq) {
		__atomic_store_n(&pd->rd, -1, __ATOMIC_RELEASE);
		gp = netpollunblock(pd, PD_MODE_R, false);
	} else if (mode == PD_MODE_W && seq == pd->wseq) {
		__atomic_store_n(&pd->wd, -1, __ATOMIC_RELEASE);
		gp = netpollunblock(pd, PD_MODE_W, false);
	}
	unlock(&pd->lock);
	netpollgoready(gp);
}

static void pd_read_deadline(void *arg, uintptr_t seq, int64_t delta)
{
	(void)delta;
	pd_deadline_fire(arg, PD_MODE_R, seq);
}

static void pd_write_deadline(void *arg, uintptr_t seq, int64_t delta)
{
	(void)delta;
	pd_deadline_fire(arg, PD_MODE_W, seq);
}

/* pd->lock held.  Install deadline d (0 none, -1 expired) for mode. */
static struct g *pd_set_one(struct polldesc *pd, int mode, int64_t d)
{
	bool r = mode == PD_MODE_R;
	int64_t *dp = r ? &pd->rd : &pd->wd;
	uintptr_t *seq = r ? &pd->rseq : &pd->wseq;
	struct timer *t = r ? &pd->rt : &pd->wt;

	if (*dp == d)
		return NULL;
	(*seq)++;
	__atomic_store_n(dp, d, __ATOMIC_RELEASE);
	if (d > 0)
		modtimer(t, d, 0, r ? pd_read_deadline : pd_write_deadline,
			 pd, *seq);
	else
		deltimer(t);
	return d < 0 ? netpollunblock(pd, mode, false) : NULL;
}

/* when: absolute CLOCK_MONOTONIC ns, 0 for none; in the past, blocked
 * calls fail at once with -ETIMEDOUT. */
int pd_set_deadline(struct polldesc *pd, int64_t when, int modes)
{
	struct g *rg = NULL, *wg = NULL;
	int64_t d = when;

	if (when < 0)
		return -EINVAL;
	if (when > 0 && when <= nanotime())
		d = -1;
	lock(&pd->lock);
	if (pd->closing) {
		unlock(&pd->lock);
		return -EBADF;
	}
	if (modes & PD_MODE_R)
		rg = pd_set_one(pd, PD_MODE_R, d);
	if (modes & PD_MODE_W)
		wg = pd_set_one(pd, PD_MODE_W, d);
	unlock(&pd->lock);
	netpollgoready(rg);
	netpollgoready(wg);
	return 0;
}

/* ---------------------------------------------------------------------
 * Descriptors: the fd table, attach, use, close
 * ------------------------------------------------------------------- */

static struct polldesc *pd_lookup(int fd)
{
	struct polldesc **l2;

	if (fd < 0 || fd >= PDTAB_L1 * PDTAB_L2)
		return NULL;
	l2 = __atomic_load_n(&pdtab[fd / PDTAB_L2], __ATOMIC_ACQUIRE);
	if (!l2)
		return NULL;
	return __atomic_load_n(&l2[fd % PDTAB_L2], __ATOMIC_ACQUIRE);
}

/* Publish pd for fd (pd == NULL: remove); -EEXIST if fd has one. */
static int pd_publish(int fd, struct polldesc *pd)
{
	struct polldesc **l2;
	int err = 0;

	lock(&pdtablock);
	l2 = pdtab[fd / PDTAB_L2];
	if (!l2) {
		l2 = calloc(PDTAB_L2, sizeof(*l2));
		if (!l2) {
			err = -ENOMEM;
			goto out_unlock;
		}
		__atomic_store_n(&pdtab[fd / PDTAB_L2], l2, __ATOMIC_RELEASE);
	}
	if (pd && l2[fd % PDTAB_L2])
		err = -EEXIST;
	else
		__atomic_store_n(&l2[fd % PDTAB_L2], pd, __ATOMIC_RELEASE);
out_unlock:
	unlock(&pdtablock);
	return err;
}

static struct polldesc *pd_alloc(void)
{
	struct polldesc *pd;

	lock(&pdcachelock);
	pd = pdcache;
	if (pd)
		pdcache = pd->link;
	unlock(&pdcachelock);
	if (!pd) {
		pd = aligned_alloc(64, (sizeof(*pd) + 63) & ~63UL);
		if (!pd)
			return NULL;
		memset(pd, 0, sizeof(*pd));
	}
	return pd;
}

/* Back to the cache; events still in flight for it are now stale. */
static void pd_free(struct polldesc *pd)
{
	__atomic_add_fetch(&pd->fdseq, 1, __ATOMIC_ACQ_REL);
	lock(&pdcachelock);
	pd->link = pdcache;
	pdcache = pd;
	unlock(&pdcachelock);
}

/* Attach an fd already known to be non-blocking, of kind PD_KIND_*. */
static int pd_attach_nonblock(int fd, bool is_sock, int kind,
			      struct polldesc **pdp)
{
	struct polldesc *pd;
	int err;

	if (fd < 0 || fd >= PDTAB_L1 * PDTAB_L2)
		return -EBADF;
	err = netpoll_init();
	if (err)
		return err;
	if (pd_lookup(fd))
		return -EEXIST;
	pd = pd_alloc();
	if (!pd)
		return -ENOMEM;
	lock(&pd->lock);
	pd->fd = fd;
	pd->is_sock = is_sock;
	pd->kind = (uint8_t)kind;
	pd->rdrained = false;
	__atomic_store_n(&pd->rdhup, false, __ATOMIC_RELAXED);
	pd->compl = false;	/* the poller's open decides */
	pd->closing = false;
	pd->rseq++;
	pd->wseq++;
	pd->rd = pd->wd = 0;
	pd->backoff_ms = 0;
	__atomic_store_n(&pd->rg, PD_NIL, __ATOMIC_RELAXED);
	__atomic_store_n(&pd->wg, PD_NIL, __ATOMIC_RELAXED);
	__atomic_store_n(&pd->ref, 0, __ATOMIC_RELEASE);
	unlock(&pd->lock);
	pd_tsan_release(pd);
	err = pollops->open(pd);
	if (err)
		goto out_free;
	err = pd_publish(fd, pd);
	if (err)
		goto out_close;
	if (pdp)
		*pdp = pd;
	return 0;

out_close:
	pollops->close(pd);
out_free:
	__atomic_store_n(&pd->ref, PD_CLOSING, __ATOMIC_RELEASE);
	pd_free(pd);
	return err;
}

/* Any fd: learn what it is and make it non-blocking first. */
int pd_attach(int fd, struct polldesc **pdp)
{
	struct stat st;
	int flags;

	if (fd < 0 || fd >= PDTAB_L1 * PDTAB_L2)
		return -EBADF;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fstat(fd, &st) < 0)
		return -errno;
	if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return pd_attach_nonblock(fd, S_ISSOCK(st.st_mode), PD_KIND_FILE, pdp);
}

/* A socket the runtime made with SOCK_NONBLOCK (socket, accept4), a
 * stream or a listener (kind): the F_GETFL and fstat of pd_attach would
 * tell nothing new, and cost two syscalls per accepted connection
 * (bench/accept). */
int pd_attach_socket(int fd, int kind)
{
	return pd_attach_nonblock(fd, true, kind, NULL);
}

/* Take a reference on fd's descriptor for one API call, or NULL (not
 * attached, or being closed). */
struct polldesc *pd_acquire(int fd)
{
	struct polldesc *pd = pd_lookup(fd);
	uint64_t old;

	if (!pd)
		return NULL;
	old = __atomic_load_n(&pd->ref, __ATOMIC_ACQUIRE);
	do {
		if (old & PD_CLOSING)
			return NULL;
	} while (!__atomic_compare_exchange_n(&pd->ref, &old, old + 1, false,
					      __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
	/* It may have been closed and attached again meanwhile. */
	if (pd->fd != fd || pd_lookup(fd) != pd) {
		pd_release(pd);
		return NULL;
	}
	return pd;
}

void pd_release(struct polldesc *pd)
{
	uint64_t old = __atomic_fetch_sub(&pd->ref, 1, __ATOMIC_ACQ_REL);

	if (old == (PD_CLOSING | 1))
		goro_sema_release(&pd->csema, false);
}

/* Wake both waiters with -ECANCELED and make every later wait fail. */
static void pd_evict(struct polldesc *pd)
{
	struct g *rg, *wg;

	lock(&pd->lock);
	__atomic_store_n(&pd->closing, true, __ATOMIC_RELEASE);
	pd->rseq++;
	pd->wseq++;
	rg = netpollunblock(pd, PD_MODE_R, false);
	wg = netpollunblock(pd, PD_MODE_W, false);
	deltimer(&pd->rt);
	deltimer(&pd->wt);
	unlock(&pd->lock);
	netpollgoready(rg);
	netpollgoready(wg);
}

/* close(2) in a function of its own: we may be on another thread than
 * at the start of pd_close, and a cached &errno would be the old one's.
 * EINTR still closed the fd (Linux). */
__attribute__((noinline, noipa)) static int sys_close(int fd)
{
	return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

/* goro_close of an attached fd; -EBADF if not attached or closing. */
int pd_close(int fd)
{
	struct polldesc *pd = pd_lookup(fd);
	uint64_t old;
	int err = 0;

	if (!pd)
		return -EBADF;
	old = __atomic_fetch_or(&pd->ref, PD_CLOSING, __ATOMIC_ACQ_REL);
	if (old & PD_CLOSING)
		return -EBADF;
	pd_evict(pd);
	if (old)
		goro_sema_acquire(&pd->csema);	/* the last user wakes us */
	pollops->close(pd);
	pd_publish(fd, NULL);
	deltimer_sync(&pd->rt);
	deltimer_sync(&pd->wt);
	err = sys_close(fd);
	pd_free(pd);
	return err;
}

/* goro_fd_attach: for fds made elsewhere (pipes, eventfds, sockets). */
GORO_API int goro_fd_attach(int fd)
{
	return pd_attach(fd, NULL);
}
