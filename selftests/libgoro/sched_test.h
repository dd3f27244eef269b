/* SPDX-License-Identifier: MIT */
/*
 * sched_test.h - helpers of the scheduler, stack and timer selftests.
 *
 * tgate: a join counter built straight on gopark/goready (no sync
 * package), so the scheduler tests do not depend on sync.c.  tpark: a
 * list of parked goroutines released all at once.  run_child(): fork,
 * run fn in the child with stderr captured, return the exit status and
 * the text, for tests of the fatal paths.
 */
#ifndef SCHED_TEST_H
#define SCHED_TEST_H

#include <goro.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/goro.h>

#include "runtime.h"
#include "../test_env.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED	1
#else
#define SANITIZED	0
#endif
/* TSan creates a fiber per new goroutine at ~1 ms each: keep counts low. */
#if defined(__SANITIZE_THREAD__)
#define TSAN		1
#else
#define TSAN		0
#endif

struct tgate {
	struct rtlock l;
	long remaining;
	struct g *waiter;
};

/* Add opt ("name=value") to GORODEBUG, keeping what the run was given
 * (the epoll variant's netpoll=epoll, the VM's options). */
static inline void gorodebug_add(const char *opt)
{
	const char *old = getenv("GORODEBUG");
	char buf[256];

	snprintf(buf, sizeof(buf), "%s%s%s", old ? old : "",
		 old && *old ? "," : "", opt);
	setenv("GORODEBUG", buf, 1);
}

/* goro_num_goroutine() once at most `want`, or after about 2 s: a
 * goroutine that has signalled its end may still be exiting on another
 * P, whose vCPU the host may not run for a while (the VM). */
static inline int wait_num_goroutine(int want)
{
	for (int i = 0; i < 2000 && goro_num_goroutine() > want; i++)
		goro_sleep(1000000);
	return goro_num_goroutine();
}

static inline void tgate_add(struct tgate *t, long n)
{
	lock(&t->l);
	t->remaining += n;
	unlock(&t->l);
}

static inline void tgate_done(struct tgate *t)
{
	struct g *w = NULL;

	lock(&t->l);
	if (--t->remaining == 0) {
		w = t->waiter;
		t->waiter = NULL;
	}
	unlock(&t->l);
	if (w)
		goready(w);
}

static inline bool tgate_unlock(struct g *gp, void *arg)
{
	(void)gp;
	unlock(arg);
	return true;
}

static inline void tgate_wait(struct tgate *t)
{
	lock(&t->l);
	if (t->remaining == 0) {
		unlock(&t->l);
		return;
	}
	t->waiter = getg();
	gopark(tgate_unlock, &t->l, WAIT_SYNC_WAITGROUP_WAIT);
}

/* Parked goroutines, released together. */
struct tpark_node {
	struct g *gp;
	struct tpark_node *next;
};

struct tpark {
	struct rtlock l;
	struct tpark_node *head;
	long n;
};

static inline void tpark_wait(struct tpark *t)
{
	struct tpark_node node = { .gp = getg() };

	lock(&t->l);
	node.next = t->head;
	t->head = &node;
	t->n++;
	gopark(tgate_unlock, &t->l, WAIT_SEMACQUIRE);
}

static inline long tpark_count(struct tpark *t)
{
	long n;

	lock(&t->l);
	n = t->n;
	unlock(&t->l);
	return n;
}

static inline long tpark_release(struct tpark *t)
{
	struct tpark_node *list;
	long n = 0;

	lock(&t->l);
	list = t->head;
	t->head = NULL;
	t->n = 0;
	unlock(&t->l);
	while (list) {
		struct tpark_node *next = list->next;

		goready(list->gp);	/* list->gp's stack may run now */
		list = next;
		n++;
	}
	return n;
}

/* Bytes of memory we may use for a big test: half of what is free. */
static inline long avail_bytes(void)
{
	return sysconf(_SC_AVPHYS_PAGES) * sysconf(_SC_PAGESIZE) / 2;
}

static inline long rss_bytes(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

/* Run fn() in a child with env set (NULL: none); collect its stderr. */
static inline int run_child(void (*fn)(void), const char *env, char *buf,
			    size_t len)
{
	int fds[2], status;
	size_t got = 0;
	pid_t pid;

	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], 2);
		if (env)
			putenv((char *)env);
		fn();
		_exit(0);
	}
	close(fds[1]);
	for (;;) {
		char scratch[4096];
		ssize_t r;

		if (got < len - 1)
			r = read(fds[0], buf + got, len - 1 - got);
		else
			r = read(fds[0], scratch, sizeof(scratch));
		if (r <= 0)
			break;
		if (got < len - 1)
			got += (size_t)r;
	}
	buf[got] = 0;
	close(fds[0]);
	waitpid(pid, &status, 0);
	return status;
}

#endif
