// SPDX-License-Identifier: MIT
/*
 * perf_workload: a short program that makes every libgoro probe and
 * every goro.ko tracepoint it can fire, for trace_test.sh to record
 * with perf in the VM: goroutines created, started, parked on channels
 * and readied, yielding and exiting on two Ps; Ms going idle and waking;
 * a goroutine spinning past its time slice (goro:preempt) and one
 * blocked in read() on a pipe with no wrapper (goro:handoff, with the
 * kernel sysmon on); a collection (gc_*) and a read through the
 * netpoller (netpoll_wake).
 */
#include <goro.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static struct goro_chan *ping, *pong;
static struct goro_waitgroup wg;
static int pipefd[2];
static volatile int stop_spin;

static void ponger(void *arg)
{
	int v;

	(void)arg;
	while (goro_chan_recv(ping, &v))
		goro_chan_send(pong, &v);
	goro_waitgroup_done(&wg);
}

static void yielder(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100; i++)
		goro_yield();
	goro_waitgroup_done(&wg);
}

static void spinner(void *arg)
{
	(void)arg;
	while (!stop_spin)
		;
	goro_waitgroup_done(&wg);
}

static void reader(void *arg)
{
	char c;

	(void)arg;
	if (read(pipefd[0], &c, 1) != 1)
		abort();
	goro_waitgroup_done(&wg);
}

#define NETROUNDS 10

static int npipe[2];

static void netreader(void *arg)
{
	char c;

	(void)arg;
	for (int i = 0; i < NETROUNDS; i++)
		if (goro_read(npipe[0], &c, 1) != 1)
			abort();
	goro_waitgroup_done(&wg);
}

static void *volatile keep;	/* read by the collector only */

static void main_g(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000; i++)
		keep = goro_alloc(64);
	goro_gc();
	if (pipe(npipe) || goro_fd_attach(npipe[0]))
		abort();
	goro_waitgroup_add(&wg, 1);
	go(netreader, NULL);
	/* several rounds: the reader must be parked in the poller when
	 * a byte comes for netpoll_wake to fire, and under emulation on a
	 * busy host one 1 ms sleep is not always enough for that */
	for (int i = 0; i < NETROUNDS; i++) {
		goro_sleep(1000 * 1000);
		if (write(npipe[1], "n", 1) != 1)
			abort();
	}
	goro_set_maxprocs(2);
	ping = goro_chan_make(sizeof(int), 0);
	pong = goro_chan_make(sizeof(int), 0);
	if (pipe(pipefd))
		abort();
	goro_waitgroup_add(&wg, 4);
	go(ponger, NULL);
	go(yielder, NULL);
	go(reader, NULL);
	for (int i = 0; i < 1000; i++) {
		goro_chan_send(ping, &i);
		goro_chan_recv(pong, NULL);
	}
	goro_chan_close(ping);
	go(spinner, NULL);
	/* the spinner overruns its 10 ms slice many times over, even when
	 * the emulated CPUs of a loaded host run the sysmon's timer late */
	goro_sleep(200 * 1000 * 1000);
	stop_spin = 1;
	if (write(pipefd[1], "x", 1) != 1)
		abort();
	goro_waitgroup_wait(&wg);
	for (int i = 0; i < 20; i++)
		goro_sleep(1000 * 1000);	/* Ms go idle and wake */
	printf("perf_workload: done\n");
}

int main(void)
{
	return goro_main(main_g, NULL) ? 1 : 0;
}
