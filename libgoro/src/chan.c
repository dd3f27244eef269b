// SPDX-License-Identifier: MIT
/*
 * chan.c - channels (Go's runtime/chan.go).
 *
 * Model.  A channel is a struct hchan: one lock, a ring buffer of
 * dataqsiz elements of elemsize bytes (none when unbuffered), and two
 * FIFO queues of blocked goroutines, sendq and recvq, each goroutine
 * represented by a sudog on its own stack whose elem points at the value
 * it sends or the slot it receives into.
 *
 * Invariants (under c->lock):
 *  1. At least one of sendq, recvq is empty, except when both hold
 *     sudogs of selects (a select may wait to send and to receive on
 *     the same unbuffered channel).
 *  2. Buffered: qcount > 0 implies recvq is empty; qcount < dataqsiz
 *     implies sendq is empty.
 *  3. Unbuffered: a value moves straight from the sender's variable to
 *     the receiver's, stack to stack; it is never stored in the channel.
 *  4. Once closed, sendq is empty and stays empty; recvq is empty once
 *     the buffer is, and closed never goes back to 0.
 *
 * Protocol of a send (a receive mirrors it):
 *  1. Without the lock: a non-blocking send on an open channel that is
 *     full (unbuffered with no receiver, or qcount == dataqsiz) fails at
 *     once.  The reads may be stale; the answer is still one a locked
 *     check could have given a moment earlier, as in Go.
 *  2. Lock.  Closed: panic.  A receiver waits: dequeue it, copy the value
 *     into its slot, unlock, goready it (into this P's runnext: it runs
 *     as soon as we block, which is what makes ping-pong cheap).
 *  3. Room in the buffer: copy into buf[sendx], unlock.
 *  4. Else queue a sudog on sendq and gopark; the unlockf drops the lock
 *     only once we are parked, so a receiver can never ready us before.
 *     The receiver copies our value out and sets success; close sets
 *     success = false instead and we panic.
 *
 * A receiver that finds a blocked sender on a full buffered channel
 * takes the oldest element from the buffer and puts the sender's value
 * at the tail, so FIFO order holds across buffer and sendq.
 *
 * Select (select.c) shares the queues: its sudogs carry isselect and a
 * shared selectdone word; waitq_dequeue skips a select sudog whose
 * selectdone another channel's waker has already claimed.
 *
 * Alternatives rejected.  A lock-free ring (as in some C channel
 * libraries) makes the buffered fast path a little cheaper but still
 * needs the lock to park and wake, and loses FIFO order between the
 * buffer and blocked senders.  Copying via an intermediate buffer would
 * cost a second copy and an allocation for large elements; the sudog's
 * elem pointer into the peer's stack needs neither.  Allocating sudogs
 * (Go caches them per P) is unnecessary because goro's stacks never
 * move: the sudog is a local of the parked call.
 */
#include <errno.h>
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
 * Buffer and state helpers
 * ------------------------------------------------------------------- */

static inline void set_qcount(struct hchan *c, size_t v)
{
	__atomic_store_n(&c->qcount, v, __ATOMIC_RELAXED);
}

/* Copy into the buffer's tail (c locked, room checked). */
void chan_bufput(struct hchan *c, const void *ep)
{
	elemmove(chanbuf(c, c->sendx), ep, c->elemsize);
	if (++c->sendx == c->dataqsiz)
		c->sendx = 0;
	set_qcount(c, c->qcount + 1);
}

/* Take the buffer's head into ep (may be NULL; c locked, qcount > 0). */
void chan_bufget(struct hchan *c, void *ep)
{
	char *qp = chanbuf(c, c->recvx);

	if (ep)
		elemmove(ep, qp, c->elemsize);
	elemclr(qp, c->elemsize);	/* hold no stale data for the GC */
	if (++c->recvx == c->dataqsiz)
		c->recvx = 0;
	set_qcount(c, c->qcount - 1);
}

static bool chan_parkcommit(struct g *gp, void *arg)
{
	(void)gp;
	unlock(arg);
	return true;
}

/* ---------------------------------------------------------------------
 * Send and receive
 * ------------------------------------------------------------------- */

static void block_forever(enum waitreason reason)
{
	gopark(NULL, NULL, reason);
	throw("unreachable");
}

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
		unlock(&c->lock);
		goready(gp);
		return true;
	}
	if (c->qcount < c->dataqsiz) {
		chan_bufput(c, ep);
		unlock(&c->lock);
		return true;
	}
	if (!block) {
		unlock(&c->lock);
		return false;
	}

	mysg.g = getg();
	mysg.elem = (void *)ep;
	mysg.isselect = false;
	mysg.success = false;
	mysg.selectdone = NULL;
	mysg.param = &fired;
	mysg.c = c;
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
	if (c->closed && c->qcount == 0) {
		unlock(&c->lock);
		if (ep)
			elemclr(ep, c->elemsize);
		return -EPIPE;
	}
	sg = waitq_dequeue(&c->sendq);
	if (sg) {
		gp = chan_recv_from(c, sg, ep);
		unlock(&c->lock);
		goready(gp);
		return 1;
	}
	if (c->qcount > 0) {
		chan_bufget(c, ep);
		unlock(&c->lock);
		return 1;
	}
	if (!block) {
		unlock(&c->lock);
		return 0;
	}

	mysg.g = getg();
	mysg.elem = ep;
	mysg.isselect = false;
	mysg.success = false;
	mysg.selectdone = NULL;
	mysg.param = &fired;
	mysg.c = c;
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
	size_t bufsz;

	if (__builtin_mul_overflow(elem_size, cap, &bufsz) ||
	    bufsz > SIZE_MAX / 2 - sizeof(*c))
		return NULL;
	c = rootalloc(sizeof(*c) + bufsz);	/* the collector scans it */
	if (!c)
		return NULL;
	c->elemsize = elem_size;
	c->dataqsiz = cap;
	c->buf = (char *)(c + 1);
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
	if (__atomic_load_n(&c->sendq.first, __ATOMIC_RELAXED) ||
	    __atomic_load_n(&c->recvq.first, __ATOMIC_RELAXED))
		throw("goro_chan_free: channel has blocked goroutines");
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

GORO_API bool goro_chan_try_send(struct goro_chan *ch, const void *v)
{
	return chansend(hchan_of(ch), v, false);
}

GORO_API int goro_chan_try_recv(struct goro_chan *ch, void *v)
{
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

	/*
	 * Collect every waiter first and ready them after unlocking: the
	 * list links through the dequeued sudogs, which stay valid until
	 * their goroutines are readied.
	 */
	while ((sg = waitq_dequeue(&c->recvq))) {
		if (sg->elem) {
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

	return c ? __atomic_load_n(&c->qcount, __ATOMIC_RELAXED) : 0;
}

GORO_API size_t goro_chan_cap(struct goro_chan *ch)
{
	struct hchan *c = hchan_of(ch);

	return c ? c->dataqsiz : 0;
}
