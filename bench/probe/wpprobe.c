// SPDX-License-Identifier: MIT
/*
 * wpprobe: what the collector's write tracking (libgoro/src/mgc.c:
 * userfaultfd in asynchronous write-protect mode) costs per 4 KiB page
 * on this host, for reading the GC benchmarks' system time against.
 * Over a 64 MiB anonymous mapping, all pages present, registered for
 * write-protect: the protect of the whole range (a mark's start), the
 * write fault that a protected page takes at its first write (the
 * kernel resolves it itself), and the unprotect of the whole range when
 * every page is still protected (a cycle's end).  A second thread
 * spins in the same process, as a mutator does, so that changes to the
 * page tables pay for the other CPU's TLB as they do in a real run.
 * Prints one line with the medians of five rounds, in ns per page;
 * exits 0 with a note where the kernel has no asynchronous
 * write-protect (before 6.7, or userfaultfd refused).
 *
 *   wpprobe [MiB]       (default 64)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS		5
#define OS_PAGE		4096UL
/* linux/userfaultfd.h, 6.7+, spelled out for older headers */
#define FEAT_WP_UNPOPULATED	(1ULL << 13)
#define FEAT_WP_ASYNC		(1ULL << 15)

static int uffd = -1;
static volatile int stop;

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int protect(char *p, size_t n, int on)
{
	struct uffdio_writeprotect w = {
		.range = { .start = (uintptr_t)p, .len = n },
		.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &w) ? -errno : 0;
}

static void *spinner(void *arg)
{
	(void)arg;
	while (!stop)
		;
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v)
{
	qsort(v, ROUNDS, sizeof(*v), cmp);
	return v[ROUNDS / 2];
}

/* The userfaultfd, registered over [p, p + n) in asynchronous mode, or
 * -1: not on this kernel. */
static int track(char *p, size_t n)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = FEAT_WP_ASYNC | FEAT_WP_UNPOPULATED,
	};
	struct uffdio_register r = {
		.range = { .start = (uintptr_t)p, .len = n },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) ||
	    ioctl(uffd, UFFDIO_REGISTER, &r))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	size_t n = (argc > 1 ? strtoul(argv[1], NULL, 10) : 64) << 20;
	double prot[ROUNDS], fault[ROUNDS], unprot[ROUNDS];
	size_t pages = n / OS_PAGE;
	pthread_t th;
	char *p;

	if (!pages) {
		fprintf(stderr, "usage: wpprobe [MiB]\n");
		return 2;
	}
	p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("wpprobe: mmap");
		return 1;
	}
	memset(p, 1, n);
	if (track(p, n)) {
		printf("bench wpprobe: skipped (no asynchronous userfaultfd "
		       "write-protect: %s)\n", strerror(errno));
		return 0;
	}
	if (pthread_create(&th, NULL, spinner, NULL)) {
		perror("wpprobe: pthread_create");
		return 1;
	}
	for (int r = 0; r < ROUNDS; r++) {
		double t0, t1, t2, t3, t4;

		t0 = now_ns();
		if (protect(p, n, 1))
			goto fail;
		t1 = now_ns();
		for (size_t i = 0; i < n; i += OS_PAGE)
			p[i] = (char)r;
		t2 = now_ns();
		if (protect(p, n, 1))
			goto fail;
		t3 = now_ns();
		if (protect(p, n, 0))
			goto fail;
		t4 = now_ns();
		prot[r] = (t1 - t0) / (double)pages;
		fault[r] = (t2 - t1) / (double)pages;
		unprot[r] = (t4 - t3) / (double)pages;
	}
	stop = 1;
	pthread_join(th, NULL);
	printf("bench wpprobe: protect=%.0f fault=%.0f unprotect=%.0f "
	       "ns/page (%zu MiB, median of %d)\n", median(prot),
	       median(fault), median(unprot), n >> 20, ROUNDS);
	return 0;
fail:
	fprintf(stderr, "wpprobe: UFFDIO_WRITEPROTECT: %s\n", strerror(errno));
	return 1;
}
