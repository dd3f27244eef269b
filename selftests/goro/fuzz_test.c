// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_test: random ioctls and mmaps on a live instance.
 *
 * 500 000 ioctl calls (GORO_FUZZ_ITERS changes it, 100 000 at least)
 * with random command numbers (exact commands, our magic with random numbers,
 * directions and sizes, our numbers with wrong sizes, and any 32-bit
 * value but the generic ones the VFS answers before the driver sees
 * them), random or nearly-valid struct contents, and bad pointers, on
 * an fd where two more threads are registered and parking, one of them
 * unparking the fuzzer.  Every result must be one the ABI documents for
 * that command; the kernel must survive; the instance must still work.
 *
 * Sleeps are bounded: another thread sends the fuzzer SIGUSR1 (no
 * SA_RESTART) every millisecond, so a park or note sleep with a far
 * deadline ends with -EINTR.  The PRNG is seeded from the clock unless
 * GORO_FUZZ_SEED is set; the seed is printed so a failure reproduces.
 */
#include <stdlib.h>

#include <sys/eventfd.h>

#include "goro_test.h"

#define FUZZ_MIN_ITERS		100000
#define FUZZ_DEFAULT_ITERS	500000	/* about 6 s under TCG */

struct fuzz {
	int fd;
	int efd;			/* an eventfd for NETPOLL to bind */
	struct goro_info info;
	struct goro_badptrs bp;
	pid_t fuzzer_tid;
	volatile uint32_t fuzzer_slot;	/* ~0: not registered */
	volatile bool stop;
	uint64_t rng;
};

FIXTURE(fuzz) {
	int fd;
	struct fuzz fz;
};

FIXTURE_SETUP(fuzz)
{
	self->fd = goro_open_or_skip();
	ASSERT_EQ(0, goro_get_info(self->fd, &self->fz.info));
	ASSERT_EQ(0, goro_badptrs_init(&self->fz.bp));
	self->fz.fd = self->fd;
	self->fz.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, self->fz.efd);
}

FIXTURE_TEARDOWN(fuzz)
{
	close(self->fz.efd);
	close(self->fd);
}

/* xorshift64*: small, fast, and the same sequence for the same seed. */
static uint64_t fuzz_rand(struct fuzz *fz)
{
	fz->rng ^= fz->rng >> 12;
	fz->rng ^= fz->rng << 25;
	fz->rng ^= fz->rng >> 27;
	return fz->rng * 0x2545f4914f6cdd1dULL;
}

static uint32_t fuzz_below(struct fuzz *fz, uint32_t n)
{
	return (uint32_t)(fuzz_rand(fz) % n);
}

static void on_sigusr1(int sig)
{
	(void)sig;
}

/* ---- the other threads --------------------------------------------------- */

struct helper {
	struct fuzz *fz;
	int id;
	int reg_ret;
	int bad_ret;		/* first result outside the expected set */
	long parks;
};

/* An M parking a millisecond at a time; helper 0 also unparks the fuzzer. */
static void *helper_fn(void *arg)
{
	struct helper *h = arg;
	struct fuzz *fz = h->fz;
	uint32_t slot, target;
	int ret;

	h->reg_ret = goro_register(fz->fd, &slot);
	if (h->reg_ret)
		return NULL;
	while (!fz->stop) {
		ret = goro_park(fz->fd, goro_now_ns() + NSEC_PER_MSEC);
		if (ret && ret != -ETIMEDOUT && !h->bad_ret)
			h->bad_ret = ret;
		h->parks++;
		/* read once: the fuzzer may set ~0 between two reads */
		target = fz->fuzzer_slot;
		if (h->id == 0 && target != ~0u) {
			ret = goro_unpark(fz->fd, target);
			/* the fuzzer may have just unregistered */
			if (ret && ret != -ESRCH && !h->bad_ret)
				h->bad_ret = ret;
		}
	}
	ret = goro_unregister(fz->fd);
	if (ret && !h->bad_ret)
		h->bad_ret = ret;
	return NULL;
}

static void *interrupter_fn(void *arg)
{
	struct fuzz *fz = arg;
	const struct timespec ms = { .tv_nsec = NSEC_PER_MSEC };

	while (!fz->stop) {
		nanosleep(&ms, NULL);
		syscall(SYS_tgkill, getpid(), fz->fuzzer_tid, SIGUSR1);
	}
	return NULL;
}

/* ---- commands and their expected results --------------------------------- */

static const unsigned long known_cmds[] = {
	GORO_IOC_INFO, GORO_IOC_M_REGISTER, GORO_IOC_M_UNREGISTER,
	GORO_IOC_M_PARK, GORO_IOC_M_UNPARK, GORO_IOC_M_SWITCH,
	GORO_IOC_NOTE_SLEEP, GORO_IOC_NOTE_WAKEUP, GORO_IOC_NOTE_CLEAR,
	GORO_IOC_SYSMON_CONFIG, GORO_IOC_NETPOLL,
};
#define NR_KNOWN	ARRAY_SIZE(known_cmds)

static const char *const cmd_names[NR_KNOWN + 1] = {
	"INFO", "M_REGISTER", "M_UNREGISTER", "M_PARK", "M_UNPARK",
	"M_SWITCH", "NOTE_SLEEP", "NOTE_WAKEUP", "NOTE_CLEAR", "SYSMON_CONFIG",
	"NETPOLL", "unknown",
};

/* Index in known_cmds, or -1. */
static int known_index(unsigned long cmd)
{
	for (unsigned int i = 0; i < NR_KNOWN; i++)
		if (known_cmds[i] == cmd)
			return i;
	return -1;
}

/* Whether ret is a result the ABI documents for known_cmds[k]. */
static bool result_allowed(int k, int ret)
{
	if (ret == 0 || ret == -EINVAL || ret == -EFAULT)
		return true;
	switch (known_cmds[k]) {
	case GORO_IOC_M_REGISTER:
		/* -ENOSPC is impossible with three Ms, but documented */
		return ret == -EBUSY || ret == -ENOSPC;
	case GORO_IOC_M_UNREGISTER:
		return ret == -EPERM;
	case GORO_IOC_M_PARK:
		/* GORO_PARK_NETPOLL: nothing bound, or the bound fd ready */
		return ret == -EPERM || ret == -ETIMEDOUT || ret == -EINTR ||
		       ret == -ENOENT || ret == GORO_PARK_IO;
	case GORO_IOC_M_UNPARK:
		return ret == -ESRCH;
	case GORO_IOC_M_SWITCH:
		return ret == -EPERM || ret == -ESRCH || ret == -ETIMEDOUT ||
		       ret == -EINTR;
	case GORO_IOC_NOTE_SLEEP:
		return ret == -ETIMEDOUT || ret == -EINTR || ret == -ENOSPC;
	case GORO_IOC_NOTE_WAKEUP:
		return ret == -EBUSY || ret == -ENOSPC;
	case GORO_IOC_NETPOLL:
		return ret == -EBADF || ret == -EBUSY || ret == -ENOENT;
	default:		/* INFO, NOTE_CLEAR, SYSMON_CONFIG */
		return false;
	}
}

/*
 * Types the VFS answers itself before the driver (FIOCLEX, FIONBIO,
 * FIOASYNC, FIONREAD, FIOQSIZE: 'T'; FIFREEZE/FITHAW, FS_IOC_FSGETXATTR:
 * 'X'; FS_IOC_FIEMAP, FS_IOC_GETFLAGS: 'f'; FICLONE*, FIDEDUPERANGE:
 * 0x94; FS_IOC_GETFSUUID/SYSFSPATH: 0x15; FIBMAP/FIGETBSZ: 0).  Their
 * results are the VFS's, not goro's, so random commands avoid them.
 */
static bool vfs_type(unsigned int type)
{
	return type == 'T' || type == 'X' || type == 'f' || type == 0x94 ||
	       type == 0x15 || type == 0;
}

static unsigned long random_cmd(struct fuzz *fz)
{
	static const unsigned int dirs[] = {
		_IOC_NONE, _IOC_READ, _IOC_WRITE, _IOC_READ | _IOC_WRITE,
	};
	unsigned long cmd;
	unsigned int k = fuzz_below(fz, 100);

	if (k < 45)		/* an exact command */
		return known_cmds[fuzz_below(fz, NR_KNOWN)];
	if (k < 65) {		/* our magic, anything else */
		unsigned int size = fuzz_below(fz, 4) ? fuzz_below(fz, 130) :
				    fuzz_below(fz, _IOC_SIZEMASK + 1);

		return _IOC(dirs[fuzz_below(fz, 4)], GORO_IOC_MAGIC,
			    fuzz_below(fz, 256), size);
	}
	if (k < 75) {		/* one of ours, other size or direction */
		cmd = known_cmds[fuzz_below(fz, NR_KNOWN)];
		if (fuzz_below(fz, 2))
			cmd ^= (unsigned long)(1 + fuzz_below(fz, 16)) << 3
			       << _IOC_SIZESHIFT;
		else
			cmd ^= (unsigned long)(1 + fuzz_below(fz, 3))
			       << _IOC_DIRSHIFT;
		return cmd;
	}
	do {			/* anything at all */
		cmd = (uint32_t)fuzz_rand(fz);
	} while (vfs_type(_IOC_TYPE(cmd)));
	return cmd;
}

static uint64_t notes[16] __attribute__((aligned(64)));

/* Room for the largest size a command number can encode. */
union fuzz_arg {
	uint64_t w[(_IOC_SIZEMASK + 1) / 8 + 1];
	uint32_t h[(_IOC_SIZEMASK + 1) / 4 + 2];
	struct goro_m_register reg;
	struct goro_m_park park;
	struct goro_m_unpark unpark;
	struct goro_m_switch sw;
	struct goro_note note;
	struct goro_sysmon_config sysmon;
	struct goro_netpoll np;
};

static uint64_t random_deadline(struct fuzz *fz)
{
	switch (fuzz_below(fz, 6)) {
	case 0:
		return 0;
	case 1:
		return goro_now_ns() - 1;
	case 2:
		return goro_now_ns() + fuzz_below(fz, 2 * NSEC_PER_MSEC);
	case 3:
		return GORO_NO_DEADLINE;
	case 4:
		return goro_now_ns() + NSEC_PER_SEC;
	default:
		return fuzz_rand(fz);
	}
}

static uint32_t random_slot(struct fuzz *fz)
{
	const uint32_t max = fz->info.max_slots;

	switch (fuzz_below(fz, 5)) {
	case 0:
		return fuzz_below(fz, 4);
	case 1:
		return max - 1;
	case 2:
		return max;
	case 3:
		return ~0u;
	default:
		return (uint32_t)fuzz_rand(fz);
	}
}

static uint64_t random_addr(struct fuzz *fz)
{
	switch (fuzz_below(fz, 5)) {
	case 0:
	case 1:
		return (uint64_t)(uintptr_t)&notes[fuzz_below(fz, 16)];
	case 2:
		return 0;
	case 3:
		return (uint64_t)(uintptr_t)&notes[1] + 1 + fuzz_below(fz, 7);
	default:
		return fuzz_rand(fz);
	}
}

/* Random bytes for cmd, or a well-formed struct with a word spoiled. */
static void random_struct(struct fuzz *fz, unsigned long cmd,
			  union fuzz_arg *arg, size_t words)
{
	int k = known_index(cmd);

	if (k < 0 || fuzz_below(fz, 3) == 0) {
		for (size_t i = 0; i < words; i++)
			arg->w[i] = fuzz_rand(fz);
		return;
	}
	memset(arg, 0, words * sizeof(arg->w[0]));
	switch (cmd) {
	case GORO_IOC_M_PARK:
		arg->park.deadline_ns = random_deadline(fz);
		break;
	case GORO_IOC_M_UNPARK:
		arg->unpark.slot = random_slot(fz);
		break;
	case GORO_IOC_M_SWITCH:
		arg->sw.slot = random_slot(fz);
		arg->sw.deadline_ns = random_deadline(fz);
		break;
	case GORO_IOC_NOTE_SLEEP:
		arg->note.deadline_ns = random_deadline(fz);
		/* fall through */
	case GORO_IOC_NOTE_WAKEUP:
	case GORO_IOC_NOTE_CLEAR:
		arg->note.addr = random_addr(fz);
		break;
	case GORO_IOC_SYSMON_CONFIG:
		/*
		 * Zero (the defaults) or in range; no slot of this process
		 * says RUNNING, so an enabled sysmon signals nobody.
		 */
		if (fuzz_below(fz, 2))
			arg->sysmon.slice_ns = GORO_SYSMON_SLICE_MIN +
				fuzz_below(fz, 1000000);
		if (fuzz_below(fz, 2))
			arg->sysmon.blocked_ns = GORO_SYSMON_BLOCKED_MIN +
				fuzz_below(fz, 1000000);
		arg->sysmon.flags = fuzz_below(fz, 2) ? GORO_SYSMON_ENABLE : 0;
		break;
	case GORO_IOC_NETPOLL:
		/* our eventfd, or the harness's own fds, some closed and
		 * most unpollable; unbind names -1 */
		if (fuzz_below(fz, 3)) {
			arg->np.fd = fuzz_below(fz, 2) ? fz->efd :
				     (int32_t)fuzz_below(fz, 8) - 1;
		} else {
			arg->np.fd = -1;
			arg->np.flags = GORO_NETPOLL_UNBIND;
		}
		break;
	}
	/* one spoiled 32-bit word, now and then */
	if (fuzz_below(fz, 4) == 0)
		arg->h[fuzz_below(fz, _IOC_SIZE(cmd) / 4)] =
			(uint32_t)fuzz_rand(fz);
}

static void *random_ptr(struct fuzz *fz, void *good, unsigned long cmd)
{
	void *p;

	if (fuzz_below(fz, 10) < 8)
		return good;
	if (goro_badptr(&fz->bp, fuzz_below(fz, GORO_NR_BADPTRS),
			_IOC_SIZE(cmd) ? _IOC_SIZE(cmd) : 8, true, &p))
		return p;
	return good;
}

/* ---- the test ------------------------------------------------------------ */

struct fuzz_stats {
	long calls;
	/* per command: 0, -EINVAL or -ENOTTY, -EFAULT, other */
	long by_result[NR_KNOWN + 1][4];
	long unexpected;
};

static int result_class(int ret)
{
	if (!ret)
		return 0;
	if (ret == -EINVAL || ret == -ENOTTY)
		return 1;
	if (ret == -EFAULT)
		return 2;
	return 3;
}

TEST_F_TIMEOUT(fuzz, random_ioctls, 600)
{
	struct fuzz *fz = &self->fz;
	struct fuzz_stats st = { 0 };
	struct helper helpers[2];
	pthread_t hth[2], ith;
	struct sigaction sa = { .sa_handler = on_sigusr1 };
	static union fuzz_arg arg;
	const char *env;
	uint64_t seed, t0;
	long iters = FUZZ_DEFAULT_ITERS;
	uint32_t slot;
	int ret;

	env = getenv("GORO_FUZZ_SEED");
	seed = env ? strtoull(env, NULL, 0) : goro_now_ns() ^ getpid();
	if (!seed)
		seed = 1;
	fz->rng = seed;
	env = getenv("GORO_FUZZ_ITERS");
	if (env && atol(env) >= FUZZ_MIN_ITERS)
		iters = atol(env);
	ksft_print_msg("fuzz: seed %#llx (GORO_FUZZ_SEED), %ld calls\n",
		       (unsigned long long)seed, iters);

	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	fz->fuzzer_tid = goro_gettid();
	fz->fuzzer_slot = ~0u;
	ASSERT_EQ(0, goro_register(fz->fd, &slot));
	fz->fuzzer_slot = slot;

	for (int i = 0; i < 2; i++) {
		helpers[i] = (struct helper){ .fz = fz, .id = i };
		ASSERT_EQ(0, pthread_create(&hth[i], NULL, helper_fn,
					    &helpers[i]));
	}
	ASSERT_EQ(0, pthread_create(&ith, NULL, interrupter_fn, fz));

	t0 = goro_now_ns();
	for (long n = 0; n < iters; n++) {
		unsigned long cmd = random_cmd(fz);
		size_t words = (_IOC_SIZE(cmd) + 7) / 8;
		int k = known_index(cmd);
		void *p;

		if (words < 1)
			words = 1;
		random_struct(fz, cmd, &arg, words);
		p = random_ptr(fz, &arg, cmd);

		ret = goro_ioc(fz->fd, cmd, p);
		st.calls++;
		st.by_result[k < 0 ? NR_KNOWN : k][result_class(ret)]++;

		if (k < 0 ? ret != -ENOTTY :
			    !result_allowed(k, ret)) {
			if (st.unexpected++ < 10)
				TH_LOG("call %ld: cmd %#lx ptr %p: %d (%s)",
				       n, cmd, p, ret,
				       ret < 0 ? strerror(-ret) : "positive");
		}
		/* keep track of the fuzzer's own M for helper 0 */
		if (k >= 0 && !ret && cmd == GORO_IOC_M_REGISTER)
			fz->fuzzer_slot = arg.reg.slot;
		else if (k >= 0 && !ret && cmd == GORO_IOC_M_UNREGISTER)
			fz->fuzzer_slot = ~0u;
	}
	t0 = goro_now_ns() - t0;
	/* no more signals from here on: they would cut the output short */
	fz->stop = true;
	pthread_join(ith, NULL);
	ksft_print_msg("fuzz: %ld calls in %.1f s\n", st.calls, t0 / 1e9);
	for (int i = 0; i < 2; i++) {
		pthread_join(hth[i], NULL);
		EXPECT_EQ(0, helpers[i].reg_ret);
		EXPECT_EQ(0, helpers[i].bad_ret) TH_LOG("helper %d", i);
		EXPECT_LT(0, helpers[i].parks);
	}

	for (unsigned int k = 0; k <= NR_KNOWN; k++)
		ksft_print_msg("fuzz: %-12s ok %6ld  einval/enotty %6ld  efault %6ld  other %6ld\n",
			       cmd_names[k], st.by_result[k][0],
			       st.by_result[k][1], st.by_result[k][2],
			       st.by_result[k][3]);
	EXPECT_LE(FUZZ_MIN_ITERS, st.calls);
	EXPECT_EQ(0, st.unexpected);
	/* the exact commands reached their success paths, not just -EINVAL */
	for (unsigned int k = 0; k < NR_KNOWN; k++) {
		EXPECT_LT(0, st.by_result[k][0]) TH_LOG("%s never succeeded",
							cmd_names[k]);
	}

	/* the instance still works */
	goro_unregister(fz->fd);
	ASSERT_EQ(0, goro_get_info(fz->fd, &fz->info));
	ASSERT_EQ(0, goro_register(fz->fd, &slot));
	EXPECT_EQ(0, goro_unpark(fz->fd, slot));
	EXPECT_EQ(0, goro_park(fz->fd, goro_now_ns() + NSEC_PER_SEC));
	EXPECT_EQ(0, goro_unregister(fz->fd));
}

/* Random mmap lengths, offsets, protections and flags. */
TEST_F(fuzz, random_mmaps)
{
	struct fuzz *fz = &self->fz;
	const size_t size = fz->info.shm_size;
	const long page = sysconf(_SC_PAGESIZE);
	static const int flagset[] = { MAP_SHARED, MAP_PRIVATE,
				       MAP_SHARED_VALIDATE };
	long mapped = 0, refused = 0, wrong = 0;

	fz->rng = goro_now_ns() | 1;
	ksft_print_msg("mmap fuzz: seed %#llx\n", (unsigned long long)fz->rng);
	for (int n = 0; n < 5000; n++) {
		size_t len;
		off_t off;
		int prot, flags, err;
		bool valid, bad;
		void *p;
		const size_t lens[] = {
			page, size, size + page,
			fuzz_below(fz, 2 * size) + 1,
			(size_t)fuzz_below(fz, 1 << 20) * page + 1,
		};
		const off_t offs[] = {
			0, 0, (off_t)fuzz_below(fz, 64) * page,
			(off_t)(fuzz_rand(fz) & 0x7fffffffff000ULL),
		};

		len = lens[fuzz_below(fz, ARRAY_SIZE(lens))];
		off = offs[fuzz_below(fz, ARRAY_SIZE(offs))];
		prot = fuzz_below(fz, 8) & (PROT_READ | PROT_WRITE | PROT_EXEC);
		flags = flagset[fuzz_below(fz, 3)];

		/* mmap rounds len up to whole pages */
		valid = off == 0 && flags != MAP_PRIVATE &&
			!(prot & PROT_EXEC) &&
			(len + page - 1) / page * page <= size;
		p = mmap(NULL, len, prot, flags, fz->fd, off);
		err = errno;
		if (p != MAP_FAILED) {
			mapped++;
			bad = !valid;
			if (prot & PROT_WRITE)
				((volatile char *)p)[0] = 1;
			if (prot & PROT_READ)
				(void)((volatile char *)p)[len - 1];
			munmap(p, len);
		} else {
			refused++;
			bad = valid || (err != EINVAL && err != EPERM &&
					err != EOVERFLOW && err != ENOMEM);
		}
		if (bad && wrong++ == 0)
			TH_LOG("len %zu off %#llx prot %d flags %#x: %s",
			       len, (unsigned long long)off, prot, flags,
			       p == MAP_FAILED ? strerror(err) : "mapped");
	}
	ksft_print_msg("mmap fuzz: %ld mapped, %ld refused\n", mapped, refused);
	EXPECT_EQ(0, wrong);
	EXPECT_LT(0, mapped);
}

TEST_HARNESS_MAIN
