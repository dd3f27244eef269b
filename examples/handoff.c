/*
 * handoff: two threads pass a token back and forth, the way libgoro's Ms
 * hand a P to each other, and report how.  With /dev/goro each thread
 * registers as an M and every hand-off is one GORO_IOC_M_SWITCH (wake the
 * peer, park self); a note (GORO_IOC_NOTE_*) tells the main thread that
 * the relay finished.  Without the module it uses a futex word and a
 * futex-based note, which is what libgoro falls back to.  `make demo`
 * runs it natively and in the VM, where goro's tracepoints count what the
 * module did.
 *
 * Usage: handoff [ROUNDS]   (default 20000)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/goro.h>

static int goro_fd = -1;
static long rounds = 20000;
static _Atomic uint32_t turn;		/* futex path: 0 or 1 */
static _Atomic uint32_t slots[2];	/* kmod path: each side's slot */
static _Atomic uint32_t registered;
static _Atomic uint32_t done_word;	/* futex path's note */
static uint64_t done_note;		/* kmod path's note key */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long futex(_Atomic uint32_t *w, int op, uint32_t val)
{
	return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

static int gioctl(unsigned long cmd, void *arg)
{
	return ioctl(goro_fd, cmd, arg) ? -errno : 0;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "handoff: %s: %s\n", what, strerror(-err));
	exit(1);
}

/* One side of the relay: side 0 starts with the token. */
static void *relay(void *arg)
{
	uint32_t me = (uint32_t)(uintptr_t)arg, peer = !me;
	struct goro_m_register reg = { 0 };
	int err;

	if (goro_fd >= 0) {
		err = gioctl(GORO_IOC_M_REGISTER, &reg);
		if (err)
			die("M_REGISTER", err);
		slots[me] = reg.slot;
		atomic_fetch_add(&registered, 1);
		while (atomic_load(&registered) < 2)
			sched_yield();
		if (me == 1) {
			struct goro_m_park park = { .deadline_ns = GORO_NO_DEADLINE };

			while ((err = gioctl(GORO_IOC_M_PARK, &park)) == -EINTR)
				;
			if (err)
				die("M_PARK", err);
		}
		for (long i = 0; i < rounds; i++) {
			struct goro_m_switch sw = {
				.deadline_ns = GORO_NO_DEADLINE,
				.slot = slots[peer],
			};
			/* The last hand-off of side 1 only wakes side 0. */
			if (me == 1 && i == rounds - 1) {
				struct goro_m_unpark up = { .slot = slots[peer] };

				err = gioctl(GORO_IOC_M_UNPARK, &up);
			} else {
				struct goro_m_park park = {
					.deadline_ns = GORO_NO_DEADLINE,
				};

				err = gioctl(GORO_IOC_M_SWITCH, &sw);
				/* The peer was woken already: only park again. */
				while (err == -EINTR)
					err = gioctl(GORO_IOC_M_PARK, &park);
			}
			if (err)
				die("M_SWITCH", err);
		}
		if (me == 0) {
			struct goro_note n = { .addr = (uintptr_t)&done_note };

			err = gioctl(GORO_IOC_NOTE_WAKEUP, &n);
			if (err)
				die("NOTE_WAKEUP", err);
		}
		return NULL;
	}
	for (long i = 0; i < rounds; i++) {
		while (atomic_load(&turn) != me)
			futex(&turn, FUTEX_WAIT_PRIVATE, peer);
		atomic_store(&turn, peer);
		futex(&turn, FUTEX_WAKE_PRIVATE, 1);
	}
	if (me == 0) {
		atomic_store(&done_word, 1);
		futex(&done_word, FUTEX_WAKE_PRIVATE, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct goro_info info = { 0 };
	pthread_t t[2];
	uint64_t t0, t1;

	if (argc > 1)
		rounds = strtol(argv[1], NULL, 0);
	goro_fd = open("/dev/goro", O_RDWR | O_CLOEXEC);
	if (goro_fd >= 0 && gioctl(GORO_IOC_INFO, &info)) {
		close(goro_fd);
		goro_fd = -1;
	}
	if (goro_fd >= 0)
		printf("handoff: /dev/goro ABI %u, %u M slots: M_SWITCH path\n",
		       info.abi_version, info.max_slots);
	else
		printf("handoff: no /dev/goro: futex path\n");

	t0 = now_ns();
	for (uintptr_t i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, relay, (void *)i);
	/* Side 0 ends the relay and wakes the note main sleeps on, as Go's
	 * stop-the-world waits on a note. */
	if (goro_fd >= 0) {
		struct goro_note n = {
			.addr = (uintptr_t)&done_note,
			.deadline_ns = GORO_NO_DEADLINE,
		};
		int err;

		while ((err = gioctl(GORO_IOC_NOTE_SLEEP, &n)) == -EINTR)
			;
		n.deadline_ns = 0;
		if (!err)
			err = gioctl(GORO_IOC_NOTE_CLEAR, &n);
		if (err)
			die("note", err);
	} else {
		while (!atomic_load(&done_word))
			futex(&done_word, FUTEX_WAIT_PRIVATE, 0);
	}
	t1 = now_ns();
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("handoff: %ld round trips in %.1f ms, %.0f ns each\n", rounds,
	       (t1 - t0) / 1e6, (double)(t1 - t0) / rounds);
	return 0;
}
