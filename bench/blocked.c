/*
 * blocked: on GOMAXPROCS=1, a goroutine blocks in read() on an empty
 * pipe while the others should go on: how long until another goroutine
 * runs (the hand-off of the P, median of 20), then the cost of short
 * channel round trips between two goroutines meanwhile (ns per round
 * trip).  Modes:
 *   wrapper  read() between goro_syscall_enter/exit: the userland
 *            sysmon retakes the P after 20 us (natively; in the VM with
 *            GORODEBUG=kmodsysmon=0)
 *   plain    a bare read(): only goro.ko's sysmon sees the M block, so
 *            this runs only with /dev/goro (and not kmodsysmon=0):
 *              selftests/vm/run-vm.sh --kernel 6.1 build/bench/blocked
 * A plain thread writes to the pipe after 5 s whatever happens, so a
 * hand-off that never comes shows as "stalled", not as a hang.
 */
#include "bench_util.h"

#include <pthread.h>
#include <time.h>

#define REPS		20
#define NET_S		5

static int fds[2];
static bool wrapped;
static int64_t blocked_at;
static long n_rtt;
static struct goro_chan *ping, *pong;
static struct goro_waitgroup wg, pong_wg;
static uint32_t rep_done;

static void reader(void *arg)
{
	char c;

	(void)arg;
	__atomic_store_n(&blocked_at, goro_nanotime(), __ATOMIC_RELEASE);
	if (wrapped)
		goro_syscall_enter();
	if (read(fds[0], &c, 1) != 1)
		abort();
	if (wrapped)
		goro_syscall_exit();
	goro_waitgroup_done(&wg);
}

static void ponger(void *arg)
{
	long v;

	(void)arg;
	while (goro_chan_recv(ping, &v))
		goro_chan_send(pong, &v);
	goro_waitgroup_done(&pong_wg);
}

/* The safety net: unblocks a reader that no hand-off ever let go. */
static void *net_thread(void *arg)
{
	struct timespec ts = { NET_S, 0 };

	(void)arg;
	nanosleep(&ts, NULL);
	if (!__atomic_load_n(&rep_done, __ATOMIC_ACQUIRE) &&
	    write(fds[1], "n", 1) != 1)
		abort();
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* One mode: REPS blocks, each followed by n_rtt / REPS round trips. */
static void run_mode(const char *mode)
{
	int64_t handoff[REPS], rtt_ns = 0;
	char key[64];
	pthread_t th;
	long per = n_rtt / REPS;

	for (int r = 0; r < REPS; r++) {
		int64_t t0;

		__atomic_store_n(&rep_done, 0, __ATOMIC_RELAXED);
		if (pthread_create(&th, NULL, net_thread, NULL))
			abort();
		goro_waitgroup_add(&wg, 1);
		go(reader, NULL);
		goro_yield();	/* the reader runs and blocks holding our P */
		t0 = goro_nanotime();
		handoff[r] = t0 - __atomic_load_n(&blocked_at, __ATOMIC_ACQUIRE);
		for (long i = 0; i < per; i++) {
			goro_chan_send(ping, &i);
			goro_chan_recv(pong, &i);
		}
		rtt_ns += goro_nanotime() - t0;
		__atomic_store_n(&rep_done, 1, __ATOMIC_RELEASE);
		if (write(fds[1], "x", 1) != 1)
			abort();
		goro_waitgroup_wait(&wg);
		pthread_cancel(th);
		pthread_join(th, NULL);
		if (handoff[r] >= NET_S * 1000000000LL) {
			printf("bench blocked/%s: stalled (no hand-off)\n", mode);
			return;
		}
	}
	qsort(handoff, REPS, sizeof(handoff[0]), cmp_i64);
	snprintf(key, sizeof(key), "blocked/%s/handoff", mode);
	bench_print(key, (double)handoff[REPS / 2], "ns");
	snprintf(key, sizeof(key), "blocked/%s/rtt", mode);
	bench_print(key, (double)rtt_ns / (double)(per * REPS), "ns/op");
}

static void main_g(void *arg)
{
	const char *dbg = getenv("GORODEBUG");
	bool kmod = !access("/dev/goro", R_OK | W_OK) &&
		    !(dbg && strstr(dbg, "kmodsysmon=0"));

	(void)arg;
	goro_set_maxprocs(1);
	ping = goro_chan_make(sizeof(long), 0);
	pong = goro_chan_make(sizeof(long), 0);
	goro_waitgroup_add(&pong_wg, 1);
	go(ponger, NULL);
	wrapped = true;
	run_mode("wrapper");
	if (kmod) {
		wrapped = false;
		run_mode("plain");
	}
	goro_chan_close(ping);
	goro_waitgroup_wait(&pong_wg);
}

int main(int argc, char **argv)
{
	n_rtt = bench_arg(argc, argv, 200000);
	if (n_rtt < REPS)
		n_rtt = REPS;
	if (pipe(fds))
		return 1;
	return goro_main(main_g, NULL) ? 1 : 0;
}
