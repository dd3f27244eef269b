/* SPDX-License-Identifier: MIT */
/*
 * chan_test.h - helpers of the channel and select selftests: how many
 * goroutines wait on a channel (read under its lock, from chan.h), a
 * bounded wait for them to queue, and a check of a child that must die
 * with exit status 2 and a given message on stderr.
 */
#ifndef CHAN_TEST_H
#define CHAN_TEST_H

#include "kselftest_harness.h"
#include "sched_test.h"

#include "chan.h"

#define SCALE(n)	((SANITIZED ? (n) / 20 : (n)) / test_div())

/* Goroutines blocked in c's sendq (send) or recvq. */
static inline int queued(struct goro_chan *ch, bool send)
{
	struct hchan *c = (struct hchan *)ch;
	struct sudog *s;
	int n = 0;

	lock(&c->lock);
	for (s = send ? c->sendq.first : c->recvq.first; s; s = s->next)
		n++;
	unlock(&c->lock);
	return n;
}

/* Yield until n goroutines wait on ch (bounded: the test then fails). */
static inline void wait_queued(struct goro_chan *ch, bool send, int n)
{
	for (int i = 0; i < 1000000 && queued(ch, send) < n; i++)
		goro_yield();
}

static inline void expect_child(struct __test_metadata *_metadata,
				void (*fn)(void), const char *msg)
{
	char buf[16384];
	int st = run_child(fn, NULL, buf, sizeof(buf));

	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(2, WEXITSTATUS(st));
	if (!strstr(buf, msg))
		TH_LOG("stderr was: %s", buf);
	ASSERT_NE(NULL, strstr(buf, msg));
}

#endif
