/* SPDX-License-Identifier: MIT */
/*
 * chan.h - the waiter record shared by semaphores, sync and channels
 * (struct sudog), the channel object (struct hchan) and the entry points
 * select.c needs from chan.c.
 *
 * A sudog is "a goroutine waiting on something": it always lives on the
 * waiting goroutine's own stack, in the frame of the function that
 * parks.  goro's stacks never move, so a pointer to it stays valid while
 * the goroutine is parked; the goroutine leaves that frame only after it
 * was readied, and whoever readies it must read everything it needs from
 * the sudog (g, elem) before goready(), never after.
 *
 * Which lock protects a sudog's links: the lock of the queue it is on
 * (hchan.lock for sendq/recvq, semaroot.lock for a semaphore, the
 * notifyList lock for a cond).  Its other fields are written by the
 * waiter before it is queued, and by the single waker that dequeued it
 * (or, for select, that won selectdone) before goready().
 */
#ifndef GORO_CHAN_H
#define GORO_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "runtime.h"

struct hchan;

struct sudog {
	struct g *g;
	struct sudog *next;	/* queue links (waitq, semaroot list, cond) */
	struct sudog *prev;
	void *elem;		/* data slot: may point into a stack */

	/* semaphores (sema.c) */
	void *addr;		/* semaphore address this waiter is for */
	struct sudog *waitlink;	/* further waiters for the same addr */
	struct sudog *waittail;	/* last of them (on the list head only) */
	uint32_t ticket;	/* sema: hand-off done; cond: its ticket */

	/* channels and select */
	bool isselect;		/* part of a select: claim selectdone first */
	bool success;		/* woken by a value (true) or by close */
	bool delivered;		/* buffered: the waker moved the element for it */
	uint32_t *selectdone;	/* select: 0 -> 1 by the one waker that wins */
	struct sudog **param;	/* where the waker says which sudog fired */
	struct hchan *c;	/* channel it waits on */
};

/* A FIFO of sudogs: hchan.sendq and hchan.recvq. */
struct waitq {
	struct sudog *first;
	struct sudog *last;
};

/*
 * Go's hchan.  An unbuffered channel is all lock: sendq, recvq and the
 * rendezvous under it.  A buffered one's ring is lock-free (chan.c has
 * the protocol): slots of a sequence word and an element, after the
 * struct in the same allocation, and two position counters, each on a
 * cache line of its own, so that a producer and a consumer on two CPUs
 * share no line but the slots they pass between them.  The lock still
 * guards the wait queues, closed's transition and the sudogs.
 */
#define CHAN_CLOSED	(1ULL << 63)	/* in sendpos: no send gets a slot */

struct chanslot {
	uint64_t seq;		/* 2 pos: free for pos; 2 pos + 1: full */
	char elem[];
};

struct hchan {
	struct rtlock lock;
	uint32_t closed;	/* set under lock; read atomically */
	size_t dataqsiz;	/* capacity; 0 unbuffered */
	size_t ringmask;	/* slots - 1: a power of two >= dataqsiz */
	size_t elemsize;
	size_t slotsize;	/* sizeof(struct chanslot) + elemsize, 8-aligned */
	struct waitq recvq;	/* blocked receivers */
	struct waitq sendq;	/* blocked senders */
	char *buf;		/* the ring's slots */
	struct goro_timer *timer; /* set for timer channels (timer.c) */
	/* each counter alone on its line, whatever the allocation's
	 * alignment: 64 bytes before, between and after */
	char pad0[64];
	uint64_t sendpos;	/* atomic: slots ever taken by senders, | CLOSED */
	char pad1[64 - 8];
	uint64_t recvpos;	/* atomic: slots ever taken by receivers */
	char pad2[64 - 8];
};

static inline struct chanslot *chan_slot(struct hchan *c, uint64_t pos)
{
	return (struct chanslot *)(c->buf + (pos & c->ringmask) * c->slotsize);
}

/* Buffered elements, exact when nothing moves (goro_chan_len's answer). */
static inline size_t chan_count(struct hchan *c)
{
	uint64_t r = __atomic_load_n(&c->recvpos, __ATOMIC_ACQUIRE);
	uint64_t s = __atomic_load_n(&c->sendpos, __ATOMIC_ACQUIRE) & ~CHAN_CLOSED;

	return s > r ? (s - r > c->dataqsiz ? c->dataqsiz : s - r) : 0;
}

/* timer.c: goro_chan_free of a timer's channel. */
void timer_chan_free(struct goro_timer *t);

/* Copy one element; constant sizes are inlined by the compiler. */
static inline void elemmove(void *dst, const void *src, size_t size)
{
	switch (size) {
	case 0:
		return;
	case 1:
		memcpy(dst, src, 1);
		return;
	case 2:
		memcpy(dst, src, 2);
		return;
	case 4:
		memcpy(dst, src, 4);
		return;
	case 8:
		memcpy(dst, src, 8);
		return;
	case 16:
		memcpy(dst, src, 16);
		return;
	default:
		memcpy(dst, src, size);
	}
}

static inline void elemclr(void *dst, size_t size)
{
	switch (size) {
	case 0:
		return;
	case 8:
		memset(dst, 0, 8);
		return;
	default:
		memset(dst, 0, size);
	}
}

/* ---------------------------------------------------------------------
 * Wait queues and hand-offs, c->lock held by the caller; inline, for
 * chan.c's and select.c's hot paths.  first is read without the lock
 * by the fast paths, so it is stored atomically (relaxed: the lock
 * orders everything else).
 * ------------------------------------------------------------------- */
static inline void set_first(struct waitq *q, struct sudog *s)
{
	__atomic_store_n(&q->first, s, __ATOMIC_RELAXED);
}

static inline void waitq_enqueue(struct waitq *q, struct sudog *sgp)
{
	struct sudog *x = q->last;

	sgp->next = NULL;
	sgp->prev = x;
	if (x)
		x->next = sgp;
	else
		set_first(q, sgp);
	q->last = sgp;
}

static inline struct sudog *waitq_dequeue(struct waitq *q)
{
	struct sudog *sgp, *y;

	for (;;) {
		sgp = q->first;
		if (!sgp)
			return NULL;
		y = sgp->next;
		if (y) {
			y->prev = NULL;
			set_first(q, y);
		} else {
			set_first(q, NULL);
			q->last = NULL;
		}
		sgp->next = NULL;
		sgp->prev = NULL;
		/*
		 * A select waits on several channels; the first waker to
		 * claim selectdone wins it, the others drop its sudog here
		 * (the select removes the rest itself when it wakes).
		 */
		if (sgp->isselect) {
			uint32_t zero = 0;

			if (!__atomic_compare_exchange_n(sgp->selectdone, &zero,
							 1, false,
							 __ATOMIC_ACQ_REL,
							 __ATOMIC_RELAXED))
				continue;
		}
		return sgp;
	}
}

void waitq_remove(struct waitq *q, struct sudog *sgp);

/*
 * Before a value lands in the frame of sg's parked goroutine.  A thread
 * that is not a goroutine (a try_send, a buffered ring's wake) runs on
 * through the pause: the receiver's stack mark goes first, so that the
 * pause reads its stack (mgc.c, "What is not seen").  A goroutine
 * readies it before the world can stop, which clears the mark.
 */
static inline void chan_handoff_begin(struct sudog *sg)
{
	if (unlikely(!getg()))
		stackmark_clear(sg->g);
}

/*
 * Hand ep to the receiver sg dequeued from recvq (c locked).  Returns
 * the goroutine to goready() once the caller has dropped its locks.
 */
static inline struct g *chan_send_to(struct hchan *c, struct sudog *sg, const void *ep)
{
	chan_handoff_begin(sg);
	if (sg->elem) {
		elemmove(sg->elem, ep, c->elemsize);
		sg->elem = NULL;
	}
	sg->success = true;
	*sg->param = sg;
	return sg->g;
}

/*
 * Take a value for ep (may be NULL) from the sender sg dequeued from
 * sendq of an unbuffered channel (c locked).
 */
static inline struct g *chan_recv_from(struct hchan *c, struct sudog *sg,
				       void *ep)
{
	if (ep)
		elemmove(ep, sg->elem, c->elemsize);
	sg->elem = NULL;
	sg->success = true;
	*sg->param = sg;
	return sg->g;
}

/*
 * The buffered ring (chan.c), callable with or without c->lock held:
 * CHAN_OK moved one element (ep may be NULL for a receive); else the
 * ring was full (send) or empty (receive), or closed (a send: closed;
 * a receive: closed and drained).  Wakes a waiter of the other side
 * that the move may let go on.
 */
enum { CHAN_OK, CHAN_WOULDBLOCK, CHAN_ISCLOSED };
int chan_bufsend(struct hchan *c, const void *ep, bool block);
int chan_bufrecv(struct hchan *c, void *ep, bool block);
/* The same without the wake-up, for select's locked pass (it holds
 * c->lock): then chan_ring_wake once the locks are dropped.  After
 * CHAN_OK the operation stays open (acquirem, the M's chanop: chan.c)
 * until chan_ring_wake closes it. */
int chan_ring_put(struct hchan *c, const void *ep);
int chan_ring_get(struct hchan *c, void *ep);
void chan_ring_wake(struct hchan *c, bool sent);
/*
 * The waiter's half of the Dekker pair of chan.c's protocol step 3:
 * after queueing its sudog (c locked), store q->first again as a
 * seq_cst store (an xchg: a full barrier, and unlike a fence one that
 * TSan models), then recheck with the seq_cst loads below; the other
 * side's position CAS and its seq_cst load of q->first are the other
 * half.  q->first only changes under c->lock, so the store is exact.
 */
static inline void waitq_publish(struct waitq *q)
{
	__atomic_store_n(&q->first, q->first, __ATOMIC_SEQ_CST);
}

/* Would a blocked send / receive on buffered c go on now (the recheck
 * after waitq_publish)? */
static inline bool chan_bufsend_ready(struct hchan *c)
{
	uint64_t s = __atomic_load_n(&c->sendpos, __ATOMIC_SEQ_CST);
	uint64_t r = __atomic_load_n(&c->recvpos, __ATOMIC_SEQ_CST);

	return (s & CHAN_CLOSED) || (s & ~CHAN_CLOSED) - r < c->dataqsiz;
}

static inline bool chan_bufrecv_ready(struct hchan *c)
{
	uint64_t s = __atomic_load_n(&c->sendpos, __ATOMIC_SEQ_CST);
	uint64_t r = __atomic_load_n(&c->recvpos, __ATOMIC_SEQ_CST);

	return (s & CHAN_CLOSED) || (s & ~CHAN_CLOSED) != r;
}

/* Go's chansend/chanrecv (chan.c); select.c's lock-free first pass
 * uses their non-blocking forms.  chanrecv: 1 a value, -EPIPE closed
 * and drained (*ep zeroed), 0 would block. */
bool chansend(struct hchan *c, const void *ep, bool block);
int chanrecv(struct hchan *c, void *ep, bool block);
/* Would a send / a receive (ignoring close) block?  Lock-free hints. */
static inline bool chan_full(struct hchan *c)
{
	if (c->dataqsiz == 0)
		return __atomic_load_n(&c->recvq.first, __ATOMIC_RELAXED) == NULL;
	return !chan_bufsend_ready(c);
}

static inline bool chan_empty(struct hchan *c)
{
	if (c->dataqsiz == 0)
		return __atomic_load_n(&c->sendq.first, __ATOMIC_RELAXED) == NULL;
	return !chan_bufrecv_ready(c);
}

static inline bool chan_closed(struct hchan *c)
{
	return __atomic_load_n(&c->closed, __ATOMIC_ACQUIRE) != 0;
}

/* sema.c, for sync.c */
void semacquire1(uint32_t *addr, bool lifo, enum waitreason reason);
void semrelease1(uint32_t *addr, bool handoff);

/* sync.Mutex state bits (sync.c), visible to the tests. */
#define MUTEX_LOCKED		1
#define MUTEX_WOKEN		2
#define MUTEX_STARVING		4
#define MUTEX_WAITER_SHIFT	3
#define STARVATION_THRESHOLD_NS	1000000

#endif /* GORO_CHAN_H */
