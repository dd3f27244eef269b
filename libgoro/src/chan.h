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
 * Go's hchan.  The buffer of a buffered channel of non-zero elements
 * follows the struct in the same allocation.  Every field but
 * dataqsiz/elemsize (fixed at make) is protected by lock; qcount and
 * closed are also read without it (atomically) by the non-blocking fast
 * paths and goro_chan_len.
 */
struct hchan {
	struct rtlock lock;
	uint32_t closed;
	size_t qcount;		/* elements in buf */
	size_t dataqsiz;	/* capacity of buf */
	size_t elemsize;
	size_t sendx;		/* next slot to send into */
	size_t recvx;		/* next slot to receive from */
	struct waitq recvq;	/* blocked receivers */
	struct waitq sendq;	/* blocked senders */
	char *buf;
	struct goro_timer *timer; /* set for timer channels (timer.c) */
};

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
void chan_bufput(struct hchan *c, const void *ep);
void chan_bufget(struct hchan *c, void *ep);

static inline char *chanbuf(struct hchan *c, size_t i)
{
	return c->buf + i * c->elemsize;
}

/*
 * Hand ep to the receiver sg dequeued from recvq (c locked).  Returns
 * the goroutine to goready() once the caller has dropped its locks.
 */
static inline struct g *chan_send_to(struct hchan *c, struct sudog *sg, const void *ep)
{
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
 * sendq (c locked): straight from it when unbuffered; else the buffer is
 * full, so take its head and put sg's value at its tail.
 */
static inline struct g *chan_recv_from(struct hchan *c, struct sudog *sg, void *ep)
{
	if (c->dataqsiz == 0) {
		if (ep)
			elemmove(ep, sg->elem, c->elemsize);
	} else {
		char *qp = chanbuf(c, c->recvx);

		if (ep)
			elemmove(ep, qp, c->elemsize);
		elemmove(qp, sg->elem, c->elemsize);
		if (++c->recvx == c->dataqsiz)
			c->recvx = 0;
		c->sendx = c->recvx;
	}
	sg->elem = NULL;
	sg->success = true;
	*sg->param = sg;
	return sg->g;
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
	return __atomic_load_n(&c->qcount, __ATOMIC_RELAXED) == c->dataqsiz;
}

static inline bool chan_empty(struct hchan *c)
{
	if (c->dataqsiz == 0)
		return __atomic_load_n(&c->sendq.first, __ATOMIC_RELAXED) == NULL;
	return __atomic_load_n(&c->qcount, __ATOMIC_RELAXED) == 0;
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
