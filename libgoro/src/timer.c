// SPDX-License-Identifier: MIT
/*
 * timer.c - the public timers: goro_timer, goro_ticker and goro_after,
 * channels that receive the time (Go's time.Timer, time.Ticker,
 * time.After) on top of the runtime timers of time.c.
 *
 * Each public timer owns a runtime timer and a channel of capacity one
 * carrying an int64_t: the goro_nanotime() at which it fired.  The
 * runtime timer's function runs on g0 and sends without blocking; a
 * ticker whose reader is behind drops ticks, as Go's does.
 *
 * Stop and Reset follow Go 1.23: once goro_timer_stop() or _reset()
 * returns, no value sent for an earlier arming can be received.  Every
 * arming has a generation number (gen, under lock), passed to the
 * runtime timer as its seq; the fire function sends only if its seq is
 * still the current generation, and stop/reset bump gen and drain the
 * channel under the same lock.  Lock order: goro_timer.lock, then the
 * channel's lock, then the scheduler's.
 *
 * Freeing waits for a fire function already running (deltimer_sync), so
 * the memory is never touched after goro_timer_free() returns.  A
 * goro_after() channel owns its timer: goro_chan_free() of it stops and
 * frees both.
 */
#include <errno.h>
#include <stdlib.h>

#include <goro.h>

#include "chan.h"
#include "runtime.h"

struct goro_timer {
	struct timer t;
	struct rtlock lock;
	uintptr_t gen;		/* arming generation, under lock */
	struct goro_chan *c;	/* cap 1, int64_t elements */
	bool chan_owns;		/* goro_after: freed with its channel */
};

/* A ticker is a periodic timer; the two types keep the API honest. */
static inline struct goro_timer *ticker_timer(struct goro_ticker *tk)
{
	return (struct goro_timer *)tk;
}

static void sendtime(void *arg, uintptr_t seq, int64_t delta)
{
	struct goro_timer *gt = arg;
	int64_t now = nanotime();

	(void)delta;
	lock(&gt->lock);
	if (seq == gt->gen)
		goro_chan_try_send(gt->c, &now);
	unlock(&gt->lock);
}

static struct goro_timer *timer_make(int64_t when, int64_t period)
{
	struct goro_timer *gt = calloc(1, sizeof(*gt));

	if (!gt)
		return NULL;
	gt->c = goro_chan_make(sizeof(int64_t), 1);
	if (!gt->c) {
		free(gt);
		return NULL;
	}
	((struct hchan *)gt->c)->timer = gt;
	gt->gen = 1;
	gt->t.when = when;
	gt->t.period = period;
	gt->t.f = sendtime;
	gt->t.arg = gt;
	gt->t.seq = gt->gen;
	addtimer(&gt->t);
	return gt;
}

/* gt->lock held: no value of an arming before this one is left. */
static bool timer_disarm(struct goro_timer *gt)
{
	bool pending;

	gt->gen++;
	pending = deltimer(&gt->t);
	goro_chan_try_recv(gt->c, NULL);
	return pending;
}

static bool timer_rearm(struct goro_timer *gt, int64_t when, int64_t period)
{
	bool pending;

	lock(&gt->lock);
	pending = timer_disarm(gt);
	gt->t.when = when;
	gt->t.period = period;
	gt->t.seq = gt->gen;
	addtimer(&gt->t);
	unlock(&gt->lock);
	return pending;
}

static void timer_destroy(struct goro_timer *gt)
{
	struct hchan *c = (struct hchan *)gt->c;

	lock(&gt->lock);
	gt->gen++;
	unlock(&gt->lock);
	deltimer_sync(&gt->t);
	c->timer = NULL;
	goro_chan_free(gt->c);
	free(gt);
}

void timer_chan_free(struct goro_timer *gt)
{
	if (!gt->chan_owns)
		gopanic("goro_chan_free of a timer's channel (use goro_timer_free or goro_ticker_free)");
	timer_destroy(gt);
}

static int64_t deadline(int64_t ns)
{
	int64_t now = nanotime();

	if (ns < 0)
		ns = 0;
	return now > INT64_MAX - ns ? INT64_MAX : now + ns;
}

static void need_goroutine(const char *what)
{
	struct m *mp = getm();

	if (!mp || !mp->p)
		gopanic(what);
}

GORO_API struct goro_timer *goro_timer_new(int64_t ns)
{
	need_goroutine("goro_timer_new called outside a goroutine");
	return timer_make(deadline(ns), 0);
}

GORO_API struct goro_chan *goro_timer_chan(struct goro_timer *t)
{
	return t->c;
}

GORO_API bool goro_timer_stop(struct goro_timer *t)
{
	bool pending;

	lock(&t->lock);
	pending = timer_disarm(t);
	unlock(&t->lock);
	return pending;
}

GORO_API bool goro_timer_reset(struct goro_timer *t, int64_t ns)
{
	need_goroutine("goro_timer_reset called outside a goroutine");
	return timer_rearm(t, deadline(ns), 0);
}

GORO_API void goro_timer_free(struct goro_timer *t)
{
	if (t)
		timer_destroy(t);
}

GORO_API struct goro_chan *goro_after(int64_t ns)
{
	struct goro_timer *gt;

	need_goroutine("goro_after called outside a goroutine");
	gt = timer_make(deadline(ns), 0);
	if (!gt)
		return NULL;
	gt->chan_owns = true;
	return gt->c;
}

GORO_API struct goro_ticker *goro_ticker_new(int64_t period)
{
	if (period <= 0)
		gopanic("non-positive interval for goro_ticker_new");
	need_goroutine("goro_ticker_new called outside a goroutine");
	return (struct goro_ticker *)timer_make(deadline(period), period);
}

GORO_API struct goro_chan *goro_ticker_chan(struct goro_ticker *tk)
{
	return ticker_timer(tk)->c;
}

GORO_API void goro_ticker_reset(struct goro_ticker *tk, int64_t period)
{
	if (period <= 0)
		gopanic("non-positive interval for goro_ticker_reset");
	need_goroutine("goro_ticker_reset called outside a goroutine");
	timer_rearm(ticker_timer(tk), deadline(period), period);
}

GORO_API void goro_ticker_stop(struct goro_ticker *tk)
{
	goro_timer_stop(ticker_timer(tk));
}

GORO_API void goro_ticker_free(struct goro_ticker *tk)
{
	if (tk)
		timer_destroy(ticker_timer(tk));
}
