// SPDX-License-Identifier: MIT
/*
 * chan.c - channels (Go's runtime/chan.go).
 *
 * Model.  A channel is a struct hchan: one lock, two FIFO queues of
 * blocked goroutines, sendq and recvq, each goroutine represented by a
 * sudog on its own stack whose elem points at the value it sends or the
 * slot it receives into, and for a buffered channel a lock-free ring of
 * dataqsiz slots.
 *
 * Unbuffered channels are Go's, all under c->lock:
 *  1. Without the lock: a non-blocking send with no receiver waiting
 *     (a receive with no sender) fails at once.  The read may be stale;
 *     the answer is still one a locked check could have given a moment
 *     earlier, as in Go.
 *  2. Lock.  A send on a closed channel panics.  A peer waits: dequeue
 *     it, copy the value stack to stack, put it in this P's runnext
 *     (it runs as soon as we block, which is what makes a ping-pong
 *     cheap), unlock, and look for an idle P: goready_locked and
 *     wakep_after_unlock, whose store-load order the unlock gives.
 *  3. Else queue a sudog and gopark; the unlockf drops the lock only
 *     once we are parked, so a peer can never ready us before.  The
 *     peer copies the value and sets success; close sets success = false
 *     (a receiver then gets the zero value, a sender panics).
 *  Invariant: at least one of sendq, recvq is empty, except when both
 *  hold sudogs of selects (a select may wait on both sides of one
 *  channel).
 *
 * Buffered channels move their elements through a bounded lock-free
 * ring (Vyukov's MPMC queue), so that a producer and a consumer on two
 * CPUs pass slots between them instead of a lock's cache line on every
 * operation (chanbuf: the lock's line moved between the cores at every
 * send and receive).  sendpos and recvpos count the slots ever taken;
 * slot pos % cap has seq == 2 pos while free for the sender of pos,
 * seq == 2 pos + 1 once that sender wrote it, and its receiver sets it
 * to 2 (pos + cap) when done (the pos / pos + 1 of Vyukov's queue makes
 * "written for pos" and "free for pos + 1" one value with one slot, as
 * in a timer's channel).  The ring has a power of two of slots, at
 * least cap (a mask, not a division, per operation); full is still at
 * cap elements, from the positions (which a sender then reads at every
 * send; with a power-of-two cap the slot alone tells).  A sender CASes sendpos from pos to
 * pos + 1 only when its slot is free, then writes the element and
 * publishes seq; a receiver likewise on recvpos.
 *  1. Full and empty come from the positions: full when sendpos -
 *     recvpos == cap, empty when they are equal.  A slot whose seq lags
 *     while the positions say otherwise is one another goroutine is
 *     still writing or reading: a window of a few instructions, inside
 *     acquirem (no preemption, no hand-off of the P by goro.ko's sysmon
 *     in the middle of it), so the other side spins for it.
 *  2. Close sets CHAN_CLOSED in sendpos under c->lock: a sender's CAS
 *     against an old sendpos fails, and one that sees the bit panics,
 *     so every send linearises before or after the close.  A receiver
 *     that finds the ring empty and the bit set has drained it.
 *  3. Blocking: a goroutine that found the ring full (empty) locks c,
 *     queues its sudog, issues a seq_cst fence and checks the positions
 *     again; only if it still must wait it parks.  The other side, after
 *     its CAS on a position (a seq_cst read-modify-write), reads the
 *     queue's first sudog: of the two, one sees the other (Dekker), so
 *     no wake-up is lost.  That side then, under c->lock, dequeues the
 *     first waiter and makes the move for it - a freed slot gets the
 *     blocked sender's value, a filled one goes to the blocked receiver
 *     - so that a goroutine that waited is served before one that comes
 *     later, as Go's hand-off through the buffer does; if a newcomer
 *     took the slot first the waiter is only woken, to try again at the
 *     head of the queue.
 *  4. Close wakes every waiter: receivers try again (the ring may hold
 *     values yet), senders panic.
 *  The lock-free path never takes c->lock, and what it reads of the
 *  header (the queues' first pointers, closed) is written only by
 *  waiters, so the header's line stays shared in both CPUs' caches.
 *
 * Select (select.c) shares the queues: its sudogs carry isselect and a
 * shared selectdone word; waitq_dequeue skips a select sudog whose
 * selectdone another channel's waker has already claimed.
 *
 * Alternatives rejected.  Go's locked ring (goro's until then) costs
 * the lock's cache line on every operation of a producer and a consumer
 * on two CPUs.  Waking a blocked goroutine only to let it retry (no move
 * on its behalf) lets newcomers overtake it forever.  Copying via an
 * intermediate buffer would cost a second copy and an allocation for
 * large elements; the sudog's elem pointer into the peer's stack needs
 * neither.  Allocating sudogs (Go caches them per P) is unnecessary
 * because goro's stacks never move: the sudog is a local of the parked
 * call.
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <goro.h>

#include "chan.h"
#include "runtime.h"
#include "probes.h"
#include "malloc.h"

static inline struct hchan *hchan_of(struct goro_chan *ch)
{
	return (struct hchan *)ch;
}

/* Wait queues (the inline operations are in chan.h). */

/* Remove sgp if it is still queued (a waker may have dropped it). */
void waitq_remove(struct waitq *q, struct sudog *sgp)
{
	struct sudog *x = sgp->prev, *y = sgp->next;

	if (x) {
		x->next = y;
		if (y)
			y->prev = x;
		else
			q->last = x;
	} else if (y) {
		y->prev = NULL;
		set_first(q, y);
	} else if (q->first == sgp) {
		set_first(q, NULL);
		q->last = NULL;
	}
	sgp->next = NULL;
	sgp->prev = NULL;
}

/* ---------------------------------------------------------------------
 * The buffered ring
 * ------------------------------------------------------------------- */

static inline uint64_t pos_load(uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

/*
 * Batching.  A producer faster than its consumer keeps the ring full
 * and works a slot behind it, and a consumer faster than its producer
 * works a slot behind that: each slot's cache line then crosses between
 * their CPUs twice per element, and the side that arrives while the
 * other is still inside its move of the slot spins on that very line
 * (chanbuf: 15-41 ns an element here, with the host's load).  So a
 * blocking operation that meets the other side's move of its slot
 * waits until that side is ring_gap() slots ahead, and the two then
 * move whole lines of slots in turn (12-21 ns).  It waits on pause
 * rounds, looking at the other side's position only between them: a
 * load per round (the first try) kept that position's line, which the
 * other side writes at every element, away from it, and slowed it so
 * that nearly every wait ran out.  The wait is bounded
 * (RING_BACKOFF_NS: the other side may stop at any time, and then the
 * slot, free in a few nanoseconds, is taken as before), and
 * non-blocking operations, the moves a waker makes for a waiter under
 * c->lock, and select do not wait at all.
 */
#define RING_BACKOFF_NS	(4 * 1000)
#define RING_BACKOFF_PAUSES 32	/* between looks: 0.5 us on Zen 5 */
#define RING_GAP_MAX	64

static inline uint64_t ring_gap(struct hchan *c)
{
	uint64_t n = c->dataqsiz / 4;

	return n > RING_GAP_MAX ? RING_GAP_MAX : n;
}

/* Until the position at *other (CHAN_CLOSED aside) reaches want, or a
 * few microseconds went by, or the channel closed. */
static __attribute__((noinline)) void ring_backoff(uint64_t *other,
						   uint64_t want)
{
	int64_t until = nanotime() + RING_BACKOFF_NS;

	for (;;) {
		uint64_t v;

		for (int i = 0; i < RING_BACKOFF_PAUSES; i++)
			arch_pause();
		v = __atomic_load_n(other, __ATOMIC_RELAXED);
		if ((v & CHAN_CLOSED) || (int64_t)(v - want) >= 0 ||
		    nanotime() >= until)
			return;
	}
}

/*
 * A side that took slot pos asks for slot pos + RING_PREFETCH's line
 * with write intent (both sides write every slot they take: the element
 * or its clearing, and seq).  That line was last written by the other
 * side, on the other CPU, and fetching it is the cost of a ring
 * element: fetched ahead, it arrives while this side works on the lines
 * before it.  When this host put its two vCPUs where a line's round
 * trip takes 320-350 ns instead of 70-120, chanbuf went from 11-18 to
 * 28-31 ns an element (Go: 39-46), and with the prefetch to 10-25
 * (median 16); where lines are cheap it changes nothing measurable.
 * Sixteen slots are within the ring_gap() that a batch leaves between
 * the two sides, so the line asked for is not one the other side is
 * still using, as a rule.
 */
#define RING_PREFETCH	16

static inline void ring_prefetch(struct hchan *c, uint64_t pos)
{
	__builtin_prefetch(chan_slot(c, pos + RING_PREFETCH), 1);
}

/* One send into the ring, no waking; batch: wait as above. */
static int ring_put(struct hchan *c, const void *ep, bool batch)
{
	uint64_t pos = pos_load(&c->sendpos);

	for (;;) {
		struct chanslot *sl;
		int64_t dif;

		if (unlikely(pos & CHAN_CLOSED))
			return CHAN_ISCLOSED;
		sl = chan_slot(c, pos);
		dif = (int64_t)(__atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE) -
				2 * pos);
		if (likely(dif == 0)) {
			/* a ring larger than cap (not a power of two) has
			 * free slots past cap: the positions decide */
			if (c->dataqsiz != c->ringmask + 1 &&
			    pos - pos_load(&c->recvpos) >= c->dataqsiz)
				return CHAN_WOULDBLOCK;
			if (__atomic_compare_exchange_n(&c->sendpos, &pos, pos + 1,
							true, __ATOMIC_SEQ_CST,
							__ATOMIC_SEQ_CST)) {
				ring_prefetch(c, pos);
				elemmove(sl->elem, ep, c->elemsize);
				__atomic_store_n(&sl->seq, 2 * pos + 1,
						 __ATOMIC_RELEASE);
				return CHAN_OK;
			}
			continue;	/* pos reloaded by the CAS */
		}
		if (dif < 0) {
			/* full, or the receiver of the previous lap is
			 * still reading the slot */
			uint64_t gap = batch ? ring_gap(c) : 0;

			if (pos - pos_load(&c->recvpos) >= c->dataqsiz)
				return CHAN_WOULDBLOCK;
			if (gap)
				ring_backoff(&c->recvpos,
					     pos - c->ringmask - 1 + gap);
			else
				arch_pause();
		}
		pos = pos_load(&c->sendpos);
	}
}

/* One receive from the ring into ep (may be NULL), no waking; batch:
 * wait as above. */
static int ring_get(struct hchan *c, void *ep, bool batch)
{
	uint64_t pos = pos_load(&c->recvpos);

	for (;;) {
		struct chanslot *sl = chan_slot(c, pos);
		int64_t dif = (int64_t)(__atomic_load_n(&sl->seq,
							__ATOMIC_ACQUIRE) -
					(2 * pos + 1));

		if (likely(dif == 0)) {
			if (__atomic_compare_exchange_n(&c->recvpos, &pos, pos + 1,
							true, __ATOMIC_SEQ_CST,
							__ATOMIC_SEQ_CST)) {
				ring_prefetch(c, pos);
				if (ep)
					elemmove(ep, sl->elem, c->elemsize);
				/* hold no stale data for the collector */
				elemclr(sl->elem, c->elemsize);
				__atomic_store_n(&sl->seq,
						 2 * (pos + c->ringmask + 1),
						 __ATOMIC_RELEASE);
				return CHAN_OK;
			}
			continue;
		}
		if (dif < 0) {
			uint64_t s = pos_load(&c->sendpos);
			uint64_t gap = batch ? ring_gap(c) : 0;

			if ((s & ~CHAN_CLOSED) == pos)
				return s & CHAN_CLOSED ? CHAN_ISCLOSED :
							 CHAN_WOULDBLOCK;
			/* its sender is still writing it */
			if (gap)
				ring_backoff(&c->sendpos, pos + gap);
			else
				arch_pause();
		}
		pos = pos_load(&c->recvpos);
	}
}

/*
 * After a move that filled a slot (a send) or freed one (a receive):
 * if a goroutine waits on the other queue, make the move it waits for
 * (protocol step 3) and ready it.
 */
static inline void ring_wake_check(struct hchan *c, struct waitq *q,
				   bool recv);

static __attribute__((noinline)) void ring_wake(struct hchan *c,
						struct waitq *q, bool recv)
{
	struct sudog *sg;
	struct g *gp = NULL;
	bool moved = false;

	lock(&c->lock);
	sg = waitq_dequeue(q);
	if (sg) {
		int r;

		chan_handoff_begin(sg);
		r = recv ? ring_get(c, sg->elem, false) :
			   ring_put(c, sg->elem, false);

		moved = r == CHAN_OK;
		sg->delivered = moved;
		sg->success = true;
		*sg->param = sg;
		gp = sg->g;
	}
	unlock(&c->lock);
	if (!gp)
		return;
	goready_par(gp);
	/* the move made for it may let a waiter of the other side go on */
	if (moved)
		ring_wake_check(c, recv ? &c->sendq : &c->recvq, !recv);
}

static inline void ring_wake_check(struct hchan *c, struct waitq *q,
				   bool recv)
{
	if (unlikely(__atomic_load_n(&q->first, __ATOMIC_SEQ_CST) != NULL))
		ring_wake(c, q, recv);
}

/*
 * A ring operation makes its move visible before it looks for a waiter
 * to wake, and the goroutine that sees the move may free the channel at
 * once (a receiver that got the last value; a sender woken with its value
 * taken).  So an operation announces the channel in its M's chanop from
 * before its move to its last access, under acquirem so that the
 * goroutine stays on that M (the window of step 1, too), and
 * goro_chan_free waits until no M announces it: a hazard pointer.  The
 * announcing store is ordered before the move's release store, so a freer
 * that saw the move sees the announcement or its end.  Threads without
 * an M count in chan_foreign_ops instead.
 */
static long chan_foreign_ops;

static inline struct m *ring_op_begin(struct hchan *c)
{
	struct m *mp = acquirem();

	if (likely(mp))
		__atomic_store_n(&mp->chanop, c, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&chan_foreign_ops, 1, __ATOMIC_SEQ_CST);
	return mp;
}

static inline void ring_op_end(struct m *mp)
{
	if (likely(mp))
		__atomic_store_n(&mp->chanop, NULL, __ATOMIC_RELEASE);
	else
		__atomic_sub_fetch(&chan_foreign_ops, 1, __ATOMIC_RELEASE);
	releasem(mp);
}

/* Until no ring operation on c is in progress (goro_chan_free). */
static void ring_ops_drain(struct hchan *c)
{
	for (struct m *mp = __atomic_load_n(&allm, __ATOMIC_ACQUIRE); mp;
	     mp = mp->alllink)
		while (__atomic_load_n(&mp->chanop, __ATOMIC_ACQUIRE) == c)
			sched_yield();
	while (__atomic_load_n(&chan_foreign_ops, __ATOMIC_ACQUIRE))
		sched_yield();
}

int chan_ring_put(struct hchan *c, const void *ep)
{
	struct m *mp = ring_op_begin(c);
	int r = ring_put(c, ep, false);

	if (r != CHAN_OK)
		ring_op_end(mp);
	return r;
}

int chan_ring_get(struct hchan *c, void *ep)
{
	struct m *mp = ring_op_begin(c);
	int r = ring_get(c, ep, false);

	if (r != CHAN_OK)
		ring_op_end(mp);
	return r;
}

void chan_ring_wake(struct hchan *c, bool sent)
{
	if (sent)
		ring_wake_check(c, &c->recvq, true);
	else
		ring_wake_check(c, &c->sendq, false);
	ring_op_end(getm());	/* the M of chan_ring_put/get: acquirem */
}

int chan_bufsend(struct hchan *c, const void *ep, bool block)
{
	struct m *mp = ring_op_begin(c);
	int r = ring_put(c, ep, block);

	if (r == CHAN_OK)
		ring_wake_check(c, &c->recvq, true);
	ring_op_end(mp);
	return r;
}

int chan_bufrecv(struct hchan *c, void *ep, bool block)
{
	struct m *mp = ring_op_begin(c);
	int r = ring_get(c, ep, block);

	if (r == CHAN_OK)
		ring_wake_check(c, &c->sendq, false);
	ring_op_end(mp);
	return r;
}

static bool chan_parkcommit(struct g *gp, void *arg)
{
	(void)gp;
	unlock(arg);
	return true;
}

static void block_forever(enum waitreason reason)
{
	gopark(NULL, NULL, reason);
	throw("unreachable");
}

static inline void sudog_init(struct sudog *sg, struct hchan *c, void *elem,
			      struct sudog **fired)
{
	sg->g = getg();
	sg->elem = elem;
	sg->isselect = false;
	sg->success = false;
	sg->delivered = false;
	sg->selectdone = NULL;
	sg->param = fired;
	sg->c = c;
}

/* Queue sg at the head (a waiter woken to try again keeps its turn). */
static void waitq_push_head(struct waitq *q, struct sudog *sg)
{
	struct sudog *f = q->first;

	sg->prev = NULL;
	sg->next = f;
	if (f)
		f->prev = sg;
	else
		q->last = sg;
	__atomic_store_n(&q->first, sg, __ATOMIC_RELAXED);
}

/* A blocking send on a full ring (protocol step 3).  Returns once the
 * value went; panics if the channel closes meanwhile. */
static void bufsend_block(struct hchan *c, const void *ep)
{
	struct sudog mysg, *fired = NULL;
	bool again = false;

	for (;;) {
		int r = chan_bufsend(c, ep, true);

		if (r == CHAN_OK)
			return;
		if (r == CHAN_ISCLOSED)
			gopanic("send on closed channel");
		lock(&c->lock);
		sudog_init(&mysg, c, (void *)ep, &fired);
		if (again)
			waitq_push_head(&c->sendq, &mysg);
		else
			waitq_enqueue(&c->sendq, &mysg);
		waitq_publish(&c->sendq);
		if (chan_bufsend_ready(c)) {
			waitq_remove(&c->sendq, &mysg);
			unlock(&c->lock);
			continue;
		}
		GORO_PROBE3(chan_block, c, g_id(mysg.g), GORO_PROBE_REG(1));
		gopark(chan_parkcommit, &c->lock, WAIT_CHAN_SEND);
		GORO_PROBE2(chan_unblock, c, g_id(mysg.g));
		if (fired != &mysg)
			throw("G waiting list is corrupted");
		if (!mysg.success)
			gopanic("send on closed channel");
		if (mysg.delivered)
			return;
		fired = NULL;
		again = true;
	}
}

/* A blocking receive from an empty ring: 1 a value, -EPIPE closed. */
static int bufrecv_block(struct hchan *c, void *ep)
{
	struct sudog mysg, *fired = NULL;
	bool again = false;

	for (;;) {
		int r = chan_bufrecv(c, ep, true);

		if (r == CHAN_OK)
			return 1;
		if (r == CHAN_ISCLOSED) {
			if (ep)
				elemclr(ep, c->elemsize);
			return -EPIPE;
		}
		lock(&c->lock);
		sudog_init(&mysg, c, ep, &fired);
		if (again)
			waitq_push_head(&c->recvq, &mysg);
		else
			waitq_enqueue(&c->recvq, &mysg);
		waitq_publish(&c->recvq);
		if (chan_bufrecv_ready(c)) {
			waitq_remove(&c->recvq, &mysg);
			unlock(&c->lock);
			continue;
		}
		GORO_PROBE3(chan_block, c, g_id(mysg.g), GORO_PROBE_REG(2));
		gopark(chan_parkcommit, &c->lock, WAIT_CHAN_RECEIVE);
		GORO_PROBE2(chan_unblock, c, g_id(mysg.g));
		if (fired != &mysg)
			throw("G waiting list is corrupted");
		if (mysg.delivered)
			return 1;
		/* woken to try again, or by close: the ring may hold values */
		fired = NULL;
		again = mysg.success;
	}
}

/* ---------------------------------------------------------------------
 * Send and receive
 * ------------------------------------------------------------------- */

/* Go's chansend: true if the value went; false only when !block. */
bool chansend(struct hchan *c, const void *ep, bool block)
{
	struct sudog mysg, *sg, *fired = NULL;
	struct g *gp;

	if (unlikely(!c)) {
		if (!block)
			return false;
		block_forever(WAIT_CHAN_SEND_NIL);
	}
	if (c->dataqsiz) {
		int r = chan_bufsend(c, ep, block);

		if (likely(r == CHAN_OK))
			return true;
		if (r == CHAN_ISCLOSED)
			gopanic("send on closed channel");
		if (!block)
			return false;
		bufsend_block(c, ep);
		return true;
	}
	if (!block && !chan_closed(c) && chan_full(c))
		return false;

	lock(&c->lock);
	if (unlikely(c->closed)) {
		unlock(&c->lock);
		gopanic("send on closed channel");
	}
	sg = waitq_dequeue(&c->recvq);
	if (sg) {
		gp = chan_send_to(c, sg, ep);
		goready_locked(gp);
		unlock(&c->lock);
		wakep_after_unlock();
		return true;
	}
	if (!block) {
		unlock(&c->lock);
		return false;
	}

	sudog_init(&mysg, c, (void *)ep, &fired);
	waitq_enqueue(&c->sendq, &mysg);
	GORO_PROBE3(chan_block, c, g_id(mysg.g), GORO_PROBE_REG(1));
	gopark(chan_parkcommit, &c->lock, WAIT_CHAN_SEND);
	GORO_PROBE2(chan_unblock, c, g_id(mysg.g));

	if (fired != &mysg)
		throw("G waiting list is corrupted");
	if (!mysg.success) {
		if (!chan_closed(c))
			throw("chansend: spurious wakeup");
		gopanic("send on closed channel");
	}
	return true;
}

/*
 * Go's chanrecv: 1 received a value, -EPIPE closed and drained (*ep
 * zeroed), 0 would block (only when !block).
 */
int chanrecv(struct hchan *c, void *ep, bool block)
{
	struct sudog mysg, *sg, *fired = NULL;
	struct g *gp;

	if (unlikely(!c)) {
		if (!block)
			return 0;
		block_forever(WAIT_CHAN_RECEIVE_NIL);
	}
	if (c->dataqsiz) {
		int r = chan_bufrecv(c, ep, block);

		if (likely(r == CHAN_OK))
			return 1;
		if (r == CHAN_ISCLOSED) {
			if (ep)
				elemclr(ep, c->elemsize);
			return -EPIPE;
		}
		return block ? bufrecv_block(c, ep) : 0;
	}
	if (!block && chan_empty(c)) {
		/*
		 * Closed is checked after empty: a channel seen empty and
		 * then closed was empty when it closed (closed is final),
		 * unless a value arrived between the two loads, hence the
		 * second empty check.
		 */
		if (!chan_closed(c))
			return 0;
		if (chan_empty(c)) {
			if (ep)
				elemclr(ep, c->elemsize);
			return -EPIPE;
		}
	}

	lock(&c->lock);
	if (c->closed) {
		unlock(&c->lock);
		if (ep)
			elemclr(ep, c->elemsize);
		return -EPIPE;
	}
	sg = waitq_dequeue(&c->sendq);
	if (sg) {
		gp = chan_recv_from(c, sg, ep);
		goready_locked(gp);
		unlock(&c->lock);
		wakep_after_unlock();
		return 1;
	}
	if (!block) {
		unlock(&c->lock);
		return 0;
	}

	sudog_init(&mysg, c, ep, &fired);
	waitq_enqueue(&c->recvq, &mysg);
	GORO_PROBE3(chan_block, c, g_id(mysg.g), GORO_PROBE_REG(2));
	gopark(chan_parkcommit, &c->lock, WAIT_CHAN_RECEIVE);
	GORO_PROBE2(chan_unblock, c, g_id(mysg.g));

	if (fired != &mysg)
		throw("G waiting list is corrupted");
	/* On close, closechan zeroed *ep already. */
	return mysg.success ? 1 : -EPIPE;
}

/* ---------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------- */

GORO_API struct goro_chan *goro_chan_make(size_t elem_size, size_t cap)
{
	struct hchan *c;
	size_t slot = 0, slots = 0, bufsz = 0;

	if (cap) {
		if (elem_size > SIZE_MAX / 4 || cap > SIZE_MAX / 4)
			return NULL;
		slots = 1;
		while (slots < cap)
			slots <<= 1;
		slot = (sizeof(struct chanslot) + elem_size + 7) & ~(size_t)7;
		if (__builtin_mul_overflow(slot, slots, &bufsz))
			return NULL;
	}
	if (bufsz > SIZE_MAX / 2 - sizeof(*c))
		return NULL;
	c = rootalloc(sizeof(*c) + bufsz);	/* the collector scans it */
	if (!c)
		return NULL;
	c->elemsize = elem_size;
	c->dataqsiz = cap;
	c->slotsize = slot;
	c->ringmask = slots ? slots - 1 : 0;
	c->buf = (char *)(c + 1);
	for (size_t i = 0; i < slots; i++)
		chan_slot(c, i)->seq = 2 * i;
	return (struct goro_chan *)c;
}

GORO_API void goro_chan_free(struct goro_chan *ch)
{
	struct hchan *c = hchan_of(ch);

	if (!c)
		return;
	if (c->timer) {
		timer_chan_free(c->timer);	/* frees c too */
		return;
	}
	/*
	 * A receive can see the close lock-free (the ring's closed bit, or
	 * closed itself) while the closer still holds the lock, waking
	 * the other waiters: taking the lock waits it out.
	 */
	lock(&c->lock);
	if (c->sendq.first || c->recvq.first)
		throw("goro_chan_free: channel has blocked goroutines");
	unlock(&c->lock);
	if (c->dataqsiz)
		ring_ops_drain(c);
	rootfree(c);
}

GORO_API void goro_chan_send(struct goro_chan *ch, const void *v)
{
	preempt_check();
	chansend(hchan_of(ch), v, true);
}

GORO_API bool goro_chan_recv(struct goro_chan *ch, void *v)
{
	preempt_check();
	return chanrecv(hchan_of(ch), v, true) > 0;
}

/* The non-blocking operations are preemption points too: a goroutine
 * polling one in a loop spends its time in the runtime, where the
 * preemption signal only flags it (preempt.c), as select's default does. */
GORO_API bool goro_chan_try_send(struct goro_chan *ch, const void *v)
{
	preempt_check();
	return chansend(hchan_of(ch), v, false);
}

GORO_API int goro_chan_try_recv(struct goro_chan *ch, void *v)
{
	preempt_check();
	return chanrecv(hchan_of(ch), v, false);
}

GORO_API void goro_chan_close(struct goro_chan *ch)
{
	struct hchan *c = hchan_of(ch);
	struct sudog *sg, *glist = NULL, *next;

	if (!c)
		gopanic("close of nil channel");
	lock(&c->lock);
	if (c->closed) {
		unlock(&c->lock);
		gopanic("close of closed channel");
	}
	__atomic_store_n(&c->closed, 1, __ATOMIC_RELEASE);
	/* the ring's senders from now on fail their CAS and panic */
	if (c->dataqsiz)
		__atomic_fetch_or(&c->sendpos, CHAN_CLOSED, __ATOMIC_SEQ_CST);

	/*
	 * Collect every waiter first and ready them after unlocking: the
	 * list links through the dequeued sudogs, which stay valid until
	 * their goroutines are readied.  A buffered channel's receivers
	 * only wake: the ring may still hold values for them.
	 */
	while ((sg = waitq_dequeue(&c->recvq))) {
		sg->delivered = false;
		if (sg->elem && !c->dataqsiz) {
			elemclr(sg->elem, c->elemsize);
			sg->elem = NULL;
		}
		sg->success = false;
		*sg->param = sg;
		sg->next = glist;
		glist = sg;
	}
	while ((sg = waitq_dequeue(&c->sendq))) {
		sg->elem = NULL;
		sg->delivered = false;
		sg->success = false;
		*sg->param = sg;
		sg->next = glist;
		glist = sg;
	}
	unlock(&c->lock);

	for (sg = glist; sg; sg = next) {
		struct g *gp = sg->g;

		next = sg->next;
		sg->next = NULL;
		goready(gp);
	}
}

GORO_API size_t goro_chan_len(struct goro_chan *ch)
{
	struct hchan *c = hchan_of(ch);

	return c && c->dataqsiz ? chan_count(c) : 0;
}

GORO_API size_t goro_chan_cap(struct goro_chan *ch)
{
	struct hchan *c = hchan_of(ch);

	return c ? c->dataqsiz : 0;
}
