// SPDX-License-Identifier: GPL-2.0
/*
 * mswitch: the cost of handing the CPU from one M to another through
 * goro.ko, against the plain-Linux twin libgoro falls back to.
 *
 * Two threads pass a token back and forth N times (default 200 000
 * round trips), three ways:
 *   switch        M_SWITCH: one ioctl wakes the peer and parks the caller;
 *   unpark+park   M_UNPARK then M_PARK: two ioctls per hand-off;
 *   futex         FUTEX_WAKE then FUTEX_WAIT on a shared word: the twin.
 * The result is the time of one round trip (two hand-offs), and
 * ratio = goro / futex (lower is better), for three placements of the
 * two threads:
 *   bench mswitch: switch=X futex=Y ns/op ratio=Z             (split)
 *   bench munpark: unpark+park=X futex=Y ns/op ratio=Z        (split)
 *   bench mswitch/cpus=same: ...   bench munpark/cpus=same: ...
 *   bench mswitch/cpus=none: ...   bench munpark/cpus=none: ...
 *
 * The headline (unsuffixed) lines pin the threads to two different
 * CPUs: the hand-off M_SWITCH exists for, between two Ms that each have
 * a CPU, and the placement whose result is steadiest on a quiet host
 * (unpinned, the scheduler sometimes stacks both threads on one CPU and
 * sometimes not, and the result jumps by 10x and more; on a host that
 * runs other VMs beside this one, no placement is steady under TCG).  "same" pins
 * both to one CPU: a pure context switch, where M_SWITCH's sync hint
 * and spin must not cost more than the futex pair.  "none" leaves them
 * to the scheduler, as libgoro leaves its Ms.  The two diagnostic
 * placements run a tenth of the round trips (on one CPU, each round trip
 * can cost 100+ us under TCG); -c PLACEMENT runs one, with all of them.
 *
 * Without /dev/goro (natively), it says it skipped and exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/goro.h>

enum method { M_SWITCH, M_UNPARK_PARK, M_FUTEX };
enum placement { PLACE_SPLIT, PLACE_SAME, PLACE_NONE };

static const char *const placement_names[] = { "split", "same", "none" };
#define NR_PLACEMENTS	3

struct pair {
	int fd;
	enum method method;
	enum placement place;
	long rounds;
	uint32_t slot[2];
	pthread_barrier_t ready;
	/* futex twin: whose turn it is, 0 (ping) or 1 (pong) */
	_Atomic uint32_t turn;
	int err;
	uint64_t ns;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int goro_ioc(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

static int m_park(int fd)
{
	struct goro_m_park park = { .deadline_ns = GORO_NO_DEADLINE };

	return goro_ioc(fd, GORO_IOC_M_PARK, &park);
}

static int m_unpark(int fd, uint32_t slot)
{
	struct goro_m_unpark unpark = { .slot = slot };

	return goro_ioc(fd, GORO_IOC_M_UNPARK, &unpark);
}

static int m_switch(int fd, uint32_t slot)
{
	struct goro_m_switch sw = {
		.slot = slot,
		.deadline_ns = GORO_NO_DEADLINE,
	};

	return goro_ioc(fd, GORO_IOC_M_SWITCH, &sw);
}

static void futex_wait(_Atomic uint32_t *w, uint32_t val)
{
	syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void place(enum placement p, int id)
{
	cpu_set_t set;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (p == PLACE_NONE)
		return;
	CPU_ZERO(&set);
	CPU_SET(p == PLACE_SPLIT && ncpu > 1 ? id : 0, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/*
 * Hand the token to the peer and wait for it to come back.  Ping (id 0)
 * starts; pong (id 1) first waits, and its last hand-off does not wait.
 */
static int handoff(struct pair *pp, int id, bool last)
{
	uint32_t peer = pp->slot[!id];
	int ret;

	switch (pp->method) {
	case M_SWITCH:
		return last ? m_unpark(pp->fd, peer) : m_switch(pp->fd, peer);
	case M_UNPARK_PARK:
		ret = m_unpark(pp->fd, peer);
		return ret || last ? ret : m_park(pp->fd);
	case M_FUTEX:
		pp->turn = !id;
		futex_wake(&pp->turn);
		if (!last)
			while (pp->turn == (uint32_t)!id)
				futex_wait(&pp->turn, !id);
		return 0;
	}
	return -EINVAL;
}

static void *side(void *arg, int id)
{
	struct pair *pp = arg;
	struct goro_m_register reg = { 0 };
	uint64_t t0 = 0;
	int ret = 0;

	place(pp->place, id);
	if (pp->method != M_FUTEX) {
		ret = goro_ioc(pp->fd, GORO_IOC_M_REGISTER, &reg);
		pp->slot[id] = reg.slot;
	}
	if (ret)
		pp->err = ret;
	pthread_barrier_wait(&pp->ready);
	if (pp->err)
		return NULL;

	if (id == 0) {
		t0 = now_ns();
	} else if (pp->method == M_FUTEX) {
		while (pp->turn == 0)
			futex_wait(&pp->turn, 0);
	} else {
		ret = m_park(pp->fd);
	}
	for (long i = 0; i < pp->rounds && !ret; i++)
		ret = handoff(pp, id, id == 1 && i == pp->rounds - 1);
	if (id == 0)
		pp->ns = now_ns() - t0;
	if (ret)
		pp->err = ret;
	if (pp->method != M_FUTEX) {
		struct goro_m_unregister unreg = { 0 };

		goro_ioc(pp->fd, GORO_IOC_M_UNREGISTER, &unreg);
	}
	return NULL;
}

static void *ping(void *arg)
{
	return side(arg, 0);
}

static void *pong(void *arg)
{
	return side(arg, 1);
}

/* ns per round trip, or a negative errno. */
static double run(int fd, enum method m, enum placement p, long rounds)
{
	struct pair pp = {
		.fd = fd, .method = m, .place = p, .rounds = rounds,
	};
	pthread_t a, b;

	pthread_barrier_init(&pp.ready, NULL, 2);
	if (pthread_create(&a, NULL, ping, &pp))
		return -EAGAIN;
	if (pthread_create(&b, NULL, pong, &pp)) {
		pp.err = -EAGAIN;
		pthread_barrier_wait(&pp.ready);
		pthread_join(a, NULL);
		return -EAGAIN;
	}
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	pthread_barrier_destroy(&pp.ready);
	return pp.err ? pp.err : (double)pp.ns / rounds;
}

/*
 * rounds round trips in all: a warm-up of a tenth, then the best of
 * three runs of a third each (the least disturbed by the host).
 */
static double measure(int fd, enum method m, enum placement p, long rounds)
{
	long each = rounds / 3 > 0 ? rounds / 3 : 1;
	double best = 0, v;

	v = run(fd, m, p, rounds / 10 + 1);
	if (v < 0)
		return v;
	for (int i = 0; i < 3; i++) {
		v = run(fd, m, p, each);
		if (v < 0)
			return v;
		if (!best || v < best)
			best = v;
	}
	return best;
}

static int report(int fd, enum placement p, long rounds)
{
	const char *sfx = p == PLACE_SPLIT ? "" :
			  p == PLACE_SAME ? "/cpus=same" : "/cpus=none";
	double sw, up, fx;

	sw = measure(fd, M_SWITCH, p, rounds);
	up = measure(fd, M_UNPARK_PARK, p, rounds);
	fx = measure(fd, M_FUTEX, p, rounds);
	if (sw < 0 || up < 0 || fx < 0) {
		printf("bench mswitch%s: failed (%s)\n", sfx,
		       strerror(-(int)(sw < 0 ? sw : up < 0 ? up : fx)));
		return 1;
	}
	printf("bench mswitch%s: switch=%.1f futex=%.1f ns/op ratio=%.2f\n",
	       sfx, sw, fx, sw / fx);
	printf("bench munpark%s: unpark+park=%.1f futex=%.1f ns/op ratio=%.2f\n",
	       sfx, up, fx, up / fx);
	fflush(stdout);
	return 0;
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-c split|same|none] [ROUNDS]\n", prog);
	exit(2);
}

int main(int argc, char **argv)
{
	int only = -1;
	long rounds = 200000;
	int fd, opt, ret;

	while ((opt = getopt(argc, argv, "c:")) != -1) {
		switch (opt) {
		case 'c':
			for (only = 0; only < NR_PLACEMENTS; only++)
				if (!strcmp(optarg, placement_names[only]))
					break;
			if (only == NR_PLACEMENTS)
				usage(argv[0]);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind < argc)
		rounds = strtol(argv[optind], NULL, 0);
	if (rounds < 1)
		usage(argv[0]);

	fd = open("/dev/goro", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("bench mswitch: skipped (/dev/goro: %s; goro.ko not loaded)\n",
		       strerror(errno));
		return 0;
	}

	ret = 0;
	for (enum placement p = 0; !ret && p < NR_PLACEMENTS; p++)
		if (only == (int)p)
			ret = report(fd, p, rounds);
		else if (only < 0)
			ret = report(fd, p, p == PLACE_SPLIT ? rounds :
					    rounds / 10 + 1);
	close(fd);
	return ret;
}
