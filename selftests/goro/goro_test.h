/* SPDX-License-Identifier: GPL-2.0 */
/*
 * goro_test.h: what the goro.ko ABI selftests share.
 *
 * Every wrapper returns 0 or -errno, never relies on errno afterwards,
 * so a test can compare the result of an ioctl directly with the errno
 * the ABI documents.  Tests open /dev/goro in their fixture; natively,
 * where the module is absent, the open fails with ENOENT and the test
 * is reported as SKIP (never as a failure).
 *
 * Threads other than the test's own never use the ASSERT and EXPECT macros (the
 * harness longjmps on failure, which is only valid on the test thread):
 * they store their results and the test thread checks them.
 */
#ifndef GORO_TEST_H
#define GORO_TEST_H

#include "../test_env.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/goro.h>

#include "kselftest_harness.h"

#define GORO_DEV		"/dev/goro"
#define GORO_MODULE_REFCNT	"/sys/module/goro/refcnt"

#define NSEC_PER_MSEC		1000000ULL
#define NSEC_PER_SEC		1000000000ULL

/* A kernel text address on x86_64: copy_{from,to}_user() must refuse it. */
#define GORO_KERNEL_PTR		((void *)0xffffffff81000000UL)

static inline uint64_t goro_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static inline pid_t goro_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static inline int goro_ioc(int fd, unsigned long cmd, void *arg)
{
	int ret = ioctl(fd, cmd, arg);

	if (ret < 0)
		return -errno;
	return ret;
}

static inline int goro_get_info(int fd, struct goro_info *info)
{
	memset(info, 0, sizeof(*info));
	return goro_ioc(fd, GORO_IOC_INFO, info);
}

/* Registers the calling thread; *slot gets its slot on success. */
static inline int goro_register(int fd, uint32_t *slot)
{
	struct goro_m_register reg = { 0 };
	int ret;

	reg.slot = 0xcccccccc;
	ret = goro_ioc(fd, GORO_IOC_M_REGISTER, &reg);
	if (!ret && slot)
		*slot = reg.slot;
	return ret;
}

static inline int goro_unregister(int fd)
{
	struct goro_m_unregister unreg = { 0 };

	return goro_ioc(fd, GORO_IOC_M_UNREGISTER, &unreg);
}

static inline int goro_park(int fd, uint64_t deadline_ns)
{
	struct goro_m_park park = { .deadline_ns = deadline_ns };

	return goro_ioc(fd, GORO_IOC_M_PARK, &park);
}

static inline int goro_unpark(int fd, uint32_t slot)
{
	struct goro_m_unpark unpark = { .slot = slot };

	return goro_ioc(fd, GORO_IOC_M_UNPARK, &unpark);
}

static inline int goro_switch(int fd, uint32_t slot, uint64_t deadline_ns)
{
	struct goro_m_switch sw = { .slot = slot, .deadline_ns = deadline_ns };

	return goro_ioc(fd, GORO_IOC_M_SWITCH, &sw);
}

static inline int goro_note_op(int fd, unsigned long cmd, const void *addr,
			       uint64_t deadline_ns)
{
	struct goro_note note = {
		.addr = (uint64_t)(uintptr_t)addr,
		.deadline_ns = deadline_ns,
	};

	return goro_ioc(fd, cmd, &note);
}

static inline int goro_note_sleep(int fd, const void *addr,
				  uint64_t deadline_ns)
{
	return goro_note_op(fd, GORO_IOC_NOTE_SLEEP, addr, deadline_ns);
}

static inline int goro_note_wakeup(int fd, const void *addr)
{
	return goro_note_op(fd, GORO_IOC_NOTE_WAKEUP, addr, 0);
}

static inline int goro_note_clear(int fd, const void *addr)
{
	return goro_note_op(fd, GORO_IOC_NOTE_CLEAR, addr, 0);
}

/*
 * Opens /dev/goro for the test, or ends the test as SKIP when the module
 * is not loaded.  The 6.1 harness runs the test body even after a SKIP()
 * in FIXTURE_SETUP(), so the test child exits at once with the status
 * the harness reads as "skipped" (255); nothing is open yet to undo.
 */
#define GORO_SKIP_STATUS	255

static inline int __goro_open(struct __test_metadata *_metadata)
{
	int fd = open(GORO_DEV, O_RDWR | O_CLOEXEC);

	if (fd < 0 && (errno == ENOENT || errno == ENODEV || errno == ENXIO))
		SKIP(_exit(GORO_SKIP_STATUS),
		     GORO_DEV " absent: goro.ko not loaded");
	ASSERT_LE(0, fd) {
		TH_LOG("open(%s): %s", GORO_DEV, strerror(errno));
	}
	return fd;
}
#define goro_open_or_skip()	__goro_open(_metadata)

/*
 * Waits until thread tid of process pid sleeps inside an ioctl (from
 * /proc/PID/task/TID/syscall and .../stat), so that a test knows a park
 * or a note sleep has really started before it wakes or signals it.
 * Returns false after timeout_ms without seeing it.
 */
static inline bool goro_wait_in_syscall(pid_t pid, pid_t tid, long want,
					int timeout_ms)
{
	char path[64], buf[256];
	uint64_t until = goro_now_ns() + timeout_ms * NSEC_PER_MSEC;

	do {
		long nr = -1;
		char state = '?';
		char *p;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", pid,
			 tid);
		f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%ld", &nr) != 1)
				nr = -1;
			fclose(f);
		}
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
		f = fopen(path, "r");
		if (f) {
			if (fgets(buf, sizeof(buf), f)) {
				p = strrchr(buf, ')');
				if (p && p[1] == ' ')
					state = p[2];
			}
			fclose(f);
		}
		if (nr == want && state == 'S')
			return true;
		usleep(1000);
	} while (goro_now_ns() < until);
	return false;
}

/* goro_wait_in_syscall for ioctl(2): a thread asleep in a goro.ko call. */
static inline bool goro_wait_in_ioctl(pid_t pid, pid_t tid, int timeout_ms)
{
	return goro_wait_in_syscall(pid, tid, SYS_ioctl, timeout_ms);
}

/* /sys/module/goro/refcnt, or -1 when it cannot be read. */
static inline long goro_module_refcnt(void)
{
	long v = -1;
	FILE *f = fopen(GORO_MODULE_REFCNT, "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/*
 * The module's refcount once it holds still: the preempt notifiers of
 * threads that exited in earlier tests are reaped by a delayed work,
 * which a slow VM may run well after those tests ended.  Unchanged for
 * 200 ms (10 s at most); -1 if unreadable.
 */
static inline long goro_module_refcnt_settled(void)
{
	uint64_t until = goro_now_ns() + 10000 * NSEC_PER_MSEC;
	long v = goro_module_refcnt(), last;
	int same = 0;

	while (v >= 0 && same < 20 && goro_now_ns() < until) {
		usleep(10000);
		last = v;
		v = goro_module_refcnt();
		same = v == last ? same + 1 : 0;
	}
	return v;
}

/*
 * Bad pointers every ioctl must answer with -EFAULT: NULL, a low odd
 * address, an unmapped page, a kernel address, the top of the address
 * space, a struct that runs off the end of a mapping into an unmapped
 * page and, for _IOWR commands (their struct is written back), a
 * read-only page.
 */
struct goro_badptrs {
	char *ro;		/* a read-only page of zeros ... */
	char *unmapped;		/* ... followed by an unmapped page */
	size_t page;
};

static inline int goro_badptrs_init(struct goro_badptrs *bp)
{
	char *p;

	bp->page = sysconf(_SC_PAGESIZE);
	p = mmap(NULL, 2 * bp->page, PROT_READ,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	if (munmap(p + bp->page, bp->page))
		return -errno;
	bp->ro = p;
	bp->unmapped = p + bp->page;
	return 0;
}

#define GORO_NR_BADPTRS		7

/*
 * Bad pointer number n (0 <= n < GORO_NR_BADPTRS) for a struct of size
 * bytes; false when that pointer is not bad for this command (the
 * read-only page, for a command that only reads its struct).
 */
static inline bool goro_badptr(const struct goro_badptrs *bp, int n,
			       size_t size, bool write_back, void **ptr)
{
	switch (n) {
	case 0:
		*ptr = NULL;
		return true;
	case 1:
		*ptr = (void *)1;
		return true;
	case 2:
		*ptr = bp->unmapped;
		return true;
	case 3:
		*ptr = GORO_KERNEL_PTR;
		return true;
	case 4:
		*ptr = (void *)~0UL;
		return true;
	case 5:
		/* the struct's last 8 bytes lie in the unmapped page */
		*ptr = bp->ro + bp->page - size + 8;
		return true;
	case 6:
		*ptr = bp->ro;
		return write_back;
	default:
		return false;
	}
}

#endif /* GORO_TEST_H */
