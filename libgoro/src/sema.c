// SPDX-License-Identifier: MIT
/*
 * sema.c - semaphores keyed by address (Go's runtime/sema.go): the
 * sleeping half of goro_mutex, goro_rwmutex and goro_waitgroup, plus the
 * cond variable's notifyList (in sync.c, sharing struct sudog).
 *
 * Model.  A semaphore is any uint32_t in memory.  Its value is the
 * number of units available; goro_sema_acquire takes one, waiting while
 * there is none; goro_sema_release adds one and wakes the longest
 * waiter.  The semaphore itself stores no waiters: a fixed table of
 * SEMTABLESZ roots, chosen by hashing the address, holds them, so any
 * word can be a semaphore without being initialised or destroyed, as in
 * Go.  Waiters are sudogs on the waiters' own stacks.
 *
 * Each root holds, under root->lock, a doubly linked list of "heads":
 * one sudog per distinct address that has waiters.  The head's waitlink
 * chain holds the further waiters for that address in FIFO order (its
 * waittail points at the last), so all waiters of one address are
 * served in arrival order whatever else hashes to the root.
 *
 * Invariants (under root->lock):
 *  1. Every queued sudog has s->addr set; heads have distinct addrs.
 *  2. root->nwait >= the number of queued sudogs; it is raised before a
 *     waiter re-checks the value, so a releaser that sees nwait == 0
 *     after its increment knows no waiter can miss that unit.
 *  3. A sudog's ticket is written only by the releaser that dequeued it,
 *     after the dequeue and before goready().
 *
 * Protocol of acquire (semacquire1):
 *  1. Fast path: CAS the value down if it is > 0.
 *  2. Lock the root, nwait++, re-check (a release may have raced with
 *     step 1); if still zero, queue the sudog and gopark with the root
 *     lock released by the unlockf.
 *  3. On wake-up: if the releaser handed its unit over (ticket == 1) we
 *     own it; else compete for it again from step 1's CAS, and loop.
 *
 * Protocol of release (semrelease1):
 *  1. Add the unit.  If nwait is 0 nobody can be waiting: done.
 *  2. Lock the root, dequeue the first waiter of addr, unlock.
 *  3. With handoff, take the unit back for the waiter (ticket = 1) so a
 *     newcomer cannot steal it, ready the waiter and goyield() so that
 *     it runs at once on this P: this is how a starving mutex passes
 *     ownership in FIFO order without the lock being stolen.
 *
 * Alternatives rejected.  Go keeps the heads in a treap to bound the
 * search with many distinct addresses on one root; with 251 roots and
 * the few semaphores a C program blocks on at once, a list is shorter
 * and faster to walk.  A futex per semaphore would block the M, not the
 * goroutine.
 */
#include <stdint.h>

#include <goro.h>

#include "chan.h"
#include "runtime.h"

#define SEMTABLESZ	251

struct semaroot {
	struct rtlock lock;
	uint32_t nwait;		/* waiters (atomic; invariant 2) */
	struct sudog *head;	/* one sudog per distinct addr */
} __attribute__((aligned(64)));

static struct semaroot semtable[SEMTABLESZ];

static struct semaroot *semroot(uint32_t *addr)
{
	return &semtable[((uintptr_t)addr >> 3) % SEMTABLESZ];
}

static bool cansemacquire(uint32_t *addr)
{
	uint32_t v = __atomic_load_n(addr, __ATOMIC_SEQ_CST);

	while (v != 0) {
		if (__atomic_compare_exchange_n(addr, &v, v - 1, true,
						__ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return true;
	}
	return false;
}

/* Swap head t for n in root's list of heads (n may be NULL: unlink t). */
static void semroot_replace(struct semaroot *root, struct sudog *t,
			    struct sudog *n)
{
	struct sudog *prev = t->prev, *next = t->next;

	if (n) {
		n->prev = prev;
		n->next = next;
		if (prev)
			prev->next = n;
		else
			root->head = n;
		if (next)
			next->prev = n;
	} else {
		if (prev)
			prev->next = next;
		else
			root->head = next;
		if (next)
			next->prev = prev;
	}
	t->prev = NULL;
	t->next = NULL;
}

static void semroot_queue(struct semaroot *root, uint32_t *addr,
			  struct sudog *s, bool lifo)
{
	struct sudog *t;

	s->g = getg();
	s->addr = addr;
	s->next = NULL;
	s->prev = NULL;
	s->waitlink = NULL;
	s->waittail = NULL;
	s->ticket = 0;

	for (t = root->head; t; t = t->next) {
		if (t->addr != addr)
			continue;
		if (lifo) {
			/* s becomes the head; t and its chain follow it */
			semroot_replace(root, t, s);
			s->waitlink = t;
			s->waittail = t->waittail ? t->waittail : t;
			t->waittail = NULL;
		} else {
			if (t->waittail)
				t->waittail->waitlink = s;
			else
				t->waitlink = s;
			t->waittail = s;
		}
		return;
	}
	s->next = root->head;
	if (root->head)
		root->head->prev = s;
	root->head = s;
}

static struct sudog *semroot_dequeue(struct semaroot *root, uint32_t *addr)
{
	struct sudog *t, *n;

	for (t = root->head; t; t = t->next)
		if (t->addr == addr)
			break;
	if (!t)
		return NULL;
	n = t->waitlink;
	if (n) {
		n->waittail = t->waittail == n ? NULL : t->waittail;
		semroot_replace(root, t, n);
	} else {
		semroot_replace(root, t, NULL);
	}
	t->waitlink = NULL;
	t->waittail = NULL;
	return t;
}

static bool semparkcommit(struct g *gp, void *arg)
{
	(void)gp;
	unlock(arg);
	return true;
}

void semacquire1(uint32_t *addr, bool lifo, enum waitreason reason)
{
	struct semaroot *root;
	struct sudog s;

	if (cansemacquire(addr))
		return;

	root = semroot(addr);
	for (;;) {
		lock(&root->lock);
		__atomic_add_fetch(&root->nwait, 1, __ATOMIC_SEQ_CST);
		if (cansemacquire(addr)) {
			__atomic_sub_fetch(&root->nwait, 1, __ATOMIC_SEQ_CST);
			unlock(&root->lock);
			return;
		}
		semroot_queue(root, addr, &s, lifo);
		gopark(semparkcommit, &root->lock, reason);
		if (s.ticket != 0 || cansemacquire(addr))
			return;
	}
}

void semrelease1(uint32_t *addr, bool handoff)
{
	struct semaroot *root = semroot(addr);
	struct sudog *s;
	struct g *gp;

	__atomic_add_fetch(addr, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&root->nwait, __ATOMIC_SEQ_CST) == 0)
		return;

	lock(&root->lock);
	if (__atomic_load_n(&root->nwait, __ATOMIC_RELAXED) == 0) {
		unlock(&root->lock);
		return;
	}
	s = semroot_dequeue(root, addr);
	if (s)
		__atomic_sub_fetch(&root->nwait, 1, __ATOMIC_SEQ_CST);
	unlock(&root->lock);
	if (!s)
		return;

	if (s->ticket != 0)
		throw("corrupted semaphore ticket");
	if (handoff && cansemacquire(addr))
		s->ticket = 1;
	handoff = s->ticket == 1;
	gp = s->g;		/* s may vanish once gp runs */
	goready(gp);
	if (handoff)
		goyield();
}

GORO_API void goro_sema_acquire(uint32_t *addr)
{
	semacquire1(addr, false, WAIT_SEMACQUIRE);
}

GORO_API void goro_sema_release(uint32_t *addr, bool handoff)
{
	semrelease1(addr, handoff);
}
