// SPDX-License-Identifier: MIT
/*
 * select.c - goro_select (Go's runtime/select.go, selectgo).
 *
 * Model.  A select is one goroutine waiting on several channel
 * operations at once, of which exactly one happens.  It uses the same
 * queues as plain sends and receives (chan.c): while it sleeps it has
 * one sudog per case queued on that case's channel, all pointing at one
 * selectdone word on its stack.  A waker that dequeues such a sudog
 * must first win selectdone 0 -> 1 (waitq_dequeue does it); losers drop
 * the sudog and look at the next waiter.  So exactly one case fires.
 *
 * Protocol:
 *  1. pollorder: the non-nil cases in a uniformly random order (an
 *     inside-out Fisher-Yates shuffle with fastrandn), so that no ready
 *     case is favoured.  lockorder: the same cases sorted by channel
 *     address (heapsort, O(n log n) whatever n is).
 *  1b. A first pass without the locks, in pollorder: a case whose
 *     channel looks ready (the lock-free checks of the non-blocking
 *     send and receive) is tried alone, as goro_chan_try_send/recv
 *     would, under its one channel lock; the first that succeeds is
 *     the select's case.  The choice is still uniform among the ready
 *     cases (pollorder is), and a case that became ready just after
 *     its check is one that was not ready yet: the select is as
 *     atomic as one that locked everything first.  With a ready case,
 *     most selects take one lock, not n.
 *  1c. Nothing ready, blocking, and 1..n goroutines queued on our P:
 *     yield once and start over.  They are most often the peers the
 *     last selects readied, and once they ran they wait in their
 *     channel operations, where 1b finds them: a yield instead of
 *     locking every channel twice around a park (select benchmark:
 *     145-221 -> 101-127 ns/op, Go 287-316).  A select is
 *     preemptible at this point anyway; the bound keeps it from
 *     queueing behind unrelated work it would not have waited for
 *     when parked.
 *  2. Lock every channel in lockorder, each once even if several cases
 *     name it.  Address order makes two selects over the same channels
 *     take the locks in one global order: no deadlock.
 *  3. Pass 1, in pollorder: the first case that can proceed now (a
 *     waiting peer, buffer data or room, a closed channel) is done, all
 *     locks dropped, its index returned.  None and NONBLOCK: -EAGAIN.
 *  4. Pass 2: queue a sudog on every case's channel, then gopark; the
 *     unlockf (selparkcommit) drops the locks in reverse lockorder only
 *     once the goroutine is parked.
 *  5. Woken: the waker stored the fired sudog in `fired`.  Lock all
 *     channels again and remove the other sudogs from their queues
 *     (some may already have been dropped by losing wakers), unlock,
 *     and report the case.  A send case woken by close panics.
 *
 * Invariants: between steps 4 and 5 the select's sudogs are reachable
 * only under their channels' locks, and step 5 takes all of them before
 * it returns, so no waker can touch a sudog (on this stack) after the
 * select has returned.  selparkcommit reads nothing of the select after
 * its last unlock: from then the goroutine may already run elsewhere.
 *
 * Alternatives rejected.  Locking one channel at a time and retrying
 * loses atomicity (two cases could fire); one global select lock would
 * serialise every channel operation.  Polling in case order (instead of
 * pollorder) would starve the later cases.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <goro.h>

#include "chan.h"
#include "runtime.h"

#define SELECT_STACK_CASES	16	/* cases served without malloc */
#define SELECT_MAX_CASES	65536	/* indices are uint16_t */

static inline struct hchan *case_chan(struct goro_select_case *cases,
				      uint16_t i)
{
	return (struct hchan *)cases[i].ch;
}

/* lockorder := order sorted by channel address (heapsort). */
static void sort_lockorder(struct goro_select_case *cases,
			   const uint16_t *order, uint16_t *lo, int n)
{
	int i, j, k;
	uint16_t o;
	uintptr_t c;

#define ADDR(idx)	((uintptr_t)cases[(idx)].ch)
	/* build a max-heap */
	for (i = 0; i < n; i++) {
		o = order[i];
		c = ADDR(o);
		j = i;
		while (j > 0 && ADDR(lo[(j - 1) / 2]) < c) {
			lo[j] = lo[(j - 1) / 2];
			j = (j - 1) / 2;
		}
		lo[j] = o;
	}
	/* move the maximum to the end, sift down the displaced one */
	for (i = n - 1; i > 0; i--) {
		o = lo[i];
		c = ADDR(o);
		lo[i] = lo[0];
		j = 0;
		for (;;) {
			k = 2 * j + 1;
			if (k >= i)
				break;
			if (k + 1 < i && ADDR(lo[k]) < ADDR(lo[k + 1]))
				k++;
			if (c >= ADDR(lo[k]))
				break;
			lo[j] = lo[k];
			j = k;
		}
		lo[j] = o;
	}
#undef ADDR
}

static void sellock(struct goro_select_case *cases, const uint16_t *lo, int n)
{
	struct hchan *c, *last = NULL;

	for (int i = 0; i < n; i++) {
		c = case_chan(cases, lo[i]);
		if (c != last) {
			last = c;
			lock(&c->lock);
		}
	}
}

/*
 * Unlock in reverse lock order.  When called by selparkcommit, the last
 * unlock may let the goroutine run: read nothing after it.
 */
static void selunlock(struct goro_select_case *cases, const uint16_t *lo,
		      int n)
{
	struct hchan *c;

	for (int i = n - 1; i >= 0; i--) {
		c = case_chan(cases, lo[i]);
		if (i > 0 && c == case_chan(cases, lo[i - 1]))
			continue;
		unlock(&c->lock);
	}
}

struct selpark {
	struct goro_select_case *cases;
	uint16_t *lockorder;
	int n;
};

static bool selparkcommit(struct g *gp, void *arg)
{
	struct selpark *sp = arg;

	(void)gp;
	selunlock(sp->cases, sp->lockorder, sp->n);
	return true;
}

static int select_check(struct goro_select_case *cases, int n,
			unsigned int flags)
{
	if (flags & ~GORO_SELECT_NONBLOCK)
		return -EINVAL;
	if (n < 0 || n > SELECT_MAX_CASES || (n > 0 && !cases))
		return -EINVAL;
	for (int i = 0; i < n; i++)
		if (cases[i].dir != GORO_SELECT_SEND &&
		    cases[i].dir != GORO_SELECT_RECV)
			return -EINVAL;
	return 0;
}

/*
 * Yield to the goroutines queued on our P, if there are some but no
 * more than ncases (likely our peers, not a queue of unrelated work we
 * would wait behind); true if we did.
 */
static bool select_yield_first(int ncases)
{
	struct m *mp = getm();
	struct p *pp = mp ? mp->p : NULL;
	uint32_t queued;

	if (!pp)
		return false;
	queued = runqlen(pp) +
		 !!__atomic_load_n(&pp->runnext, __ATOMIC_RELAXED);
	if (!queued || queued > (uint32_t)ncases)
		return false;
	goro_yield();
	return true;
}

/* The select proper; order/lo/sgs have room for n entries each. */
static int selectgo(struct goro_select_case *cases, int n, bool block,
		    uint16_t *pollorder, uint16_t *lockorder,
		    struct sudog *sgs)
{
	struct goro_select_case *cas;
	struct sudog *sg, *fired = NULL;
	struct selpark sp;
	struct hchan *c;
	struct g *gp;
	uint32_t done = 0;
	bool success = false, yielded = false;
	int norder = 0, i, casi;

again:
	/* 1. random poll order over the non-nil cases, then lock order */
	norder = 0;
	for (i = 0; i < n; i++) {
		uint32_t j;

		if (!cases[i].ch)
			continue;
		j = fastrandn(norder + 1);
		pollorder[norder] = pollorder[j];
		pollorder[j] = i;
		norder++;
	}
	if (norder == 0) {
		if (!block)
			return -EAGAIN;
		gopark(NULL, NULL, n == 0 ? WAIT_SELECT_NO_CASES : WAIT_SELECT);
		throw("unreachable");
	}
	/* 1b. lock-free first pass */
	for (i = 0; i < norder; i++) {
		int r;

		casi = pollorder[i];
		cas = &cases[casi];
		c = case_chan(cases, casi);
		if (cas->dir == GORO_SELECT_RECV) {
			if (chan_empty(c) && !chan_closed(c))
				continue;
			r = chanrecv(c, cas->val, false);
			if (r) {
				cas->ok = r > 0;
				return casi;
			}
		} else {
			if (chan_full(c) && !chan_closed(c))
				continue;
			if (chansend(c, cas->val, false)) {	/* closed: panics */
				cas->ok = 1;
				return casi;
			}
		}
	}
	/*
	 * Nothing ready, but a few goroutines wait on this P, likely the
	 * peers our last cases readied: let them run first, once.
	 * Parked, we would lock every channel twice and be readied by the
	 * first of them; after the yield they are blocked in their sends
	 * and receives and the lock-free pass takes one (the select
	 * benchmark: four producers readied by one consumer).
	 */
	if (block && !yielded && select_yield_first(norder)) {
		yielded = true;
		goto again;
	}
	sort_lockorder(cases, pollorder, lockorder, norder);

	/* 2. */
	sellock(cases, lockorder, norder);

	/* 3. pass 1: anything ready? */
pass1:
	for (i = 0; i < norder; i++) {
		casi = pollorder[i];
		cas = &cases[casi];
		c = case_chan(cases, casi);
		if (c->dataqsiz) {
			int r = cas->dir == GORO_SELECT_RECV ?
				chan_ring_get(c, cas->val) :
				chan_ring_put(c, cas->val);

			if (r == CHAN_OK)
				goto buf;
			if (r == CHAN_ISCLOSED && cas->dir == GORO_SELECT_RECV)
				goto rclose;
			if (r == CHAN_ISCLOSED)
				goto sclose;
		} else if (cas->dir == GORO_SELECT_RECV) {
			sg = waitq_dequeue(&c->sendq);
			if (sg)
				goto recv;
			if (c->closed)
				goto rclose;
		} else {
			if (c->closed)
				goto sclose;
			sg = waitq_dequeue(&c->recvq);
			if (sg)
				goto send;
		}
	}
	if (!block) {
		selunlock(cases, lockorder, norder);
		return -EAGAIN;
	}

	/* 4. pass 2: queue on every channel */
	gp = getg();
	for (i = 0; i < norder; i++) {
		casi = lockorder[i];
		cas = &cases[casi];
		c = case_chan(cases, casi);
		sg = &sgs[casi];
		sg->g = gp;
		sg->elem = cas->val;
		sg->isselect = true;
		sg->success = false;
		sg->delivered = false;
		sg->selectdone = &done;
		sg->param = &fired;
		sg->c = c;
		if (cas->dir == GORO_SELECT_SEND)
			waitq_enqueue(&c->sendq, sg);
		else
			waitq_enqueue(&c->recvq, sg);
	}
	/* a buffered ring that changed meanwhile would not wake us: look
	 * again once queued (chan.c, protocol step 3) */
	for (i = 0; i < norder; i++) {
		casi = lockorder[i];
		c = case_chan(cases, casi);
		if (!c->dataqsiz)
			continue;
		if (cases[casi].dir == GORO_SELECT_RECV) {
			waitq_publish(&c->recvq);
			if (chan_bufrecv_ready(c))
				break;
		} else {
			waitq_publish(&c->sendq);
			if (chan_bufsend_ready(c))
				break;
		}
	}
	if (i < norder) {
		for (i = 0; i < norder; i++) {
			casi = lockorder[i];
			c = case_chan(cases, casi);
			waitq_remove(cases[casi].dir == GORO_SELECT_SEND ?
				     &c->sendq : &c->recvq, &sgs[casi]);
		}
		goto pass1;
	}
	sp.cases = cases;
	sp.lockorder = lockorder;
	sp.n = norder;
	gopark(selparkcommit, &sp, WAIT_SELECT);

	/* 5. woken by the waker of `fired`: dequeue from the others */
	sellock(cases, lockorder, norder);
	casi = -1;
	for (i = 0; i < norder; i++) {
		int k = lockorder[i];

		sg = &sgs[k];
		c = case_chan(cases, k);
		if (sg == fired) {
			casi = k;
			success = sg->success;
		} else if (cases[k].dir == GORO_SELECT_SEND) {
			waitq_remove(&c->sendq, sg);
		} else {
			waitq_remove(&c->recvq, sg);
		}
	}
	selunlock(cases, lockorder, norder);
	if (casi < 0)
		throw("select: woken without a case");
	if (cases[casi].dir == GORO_SELECT_SEND && !success)
		gopanic("send on closed channel");
	if (case_chan(cases, casi)->dataqsiz) {
		/* a ring's waker moved the element for us, or only woke us
		 * (a newcomer took the slot, or close): then choose again */
		if (!sgs[casi].delivered) {
			fired = NULL;
			done = 0;
			goto again;
		}
		cases[casi].ok = 1;
		return casi;
	}
	/* A receive woken by close got its *val zeroed by the closer. */
	cases[casi].ok = success;
	return casi;

buf:
	selunlock(cases, lockorder, norder);
	chan_ring_wake(c, cas->dir == GORO_SELECT_SEND);
	cas->ok = 1;
	return casi;

recv:
	gp = chan_recv_from(c, sg, cas->val);
	selunlock(cases, lockorder, norder);
	goready(gp);
	cas->ok = 1;
	return casi;

rclose:
	selunlock(cases, lockorder, norder);
	if (cas->val)
		elemclr(cas->val, c->elemsize);
	cas->ok = 0;
	return casi;

send:
	gp = chan_send_to(c, sg, cas->val);
	selunlock(cases, lockorder, norder);
	goready(gp);
	cas->ok = 1;
	return casi;

sclose:
	selunlock(cases, lockorder, norder);
	gopanic("send on closed channel");
}

GORO_API int goro_select(struct goro_select_case *cases, int n,
			 unsigned int flags)
{
	uint16_t pollorder[SELECT_STACK_CASES], lockorder[SELECT_STACK_CASES];
	struct sudog sgs[SELECT_STACK_CASES];
	uint16_t *orders;
	struct sudog *big;
	int ret;

	ret = select_check(cases, n, flags);
	if (ret)
		return ret;
	preempt_check();
	if (n <= SELECT_STACK_CASES)
		return selectgo(cases, n, !(flags & GORO_SELECT_NONBLOCK),
				pollorder, lockorder, sgs);

	big = malloc((size_t)n * (sizeof(*big) + 2 * sizeof(*orders)));
	if (!big)
		return -ENOMEM;
	orders = (uint16_t *)(big + n);
	ret = selectgo(cases, n, !(flags & GORO_SELECT_NONBLOCK),
		       orders, orders + n, big);
	free(big);
	return ret;
}
