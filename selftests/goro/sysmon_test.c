// SPDX-License-Identifier: GPL-2.0
/*
 * sysmon_test: GORO_IOC_SYSMON_CONFIG, preemption by signal and the
 * hand-off of a blocked M's P, with threads acting as Ms through the
 * raw ioctls and the shared slot area.
 *
 * What is proven here: the config is validated field by field (each
 * bound, min-1 and max+1, bad signals, unknown flags, reserved words)
 * and its defaults are written back; an M whose slot says RUNNING the
 * same (curg, since) pair gets the configured signal, from the kernel
 * (SI_KERNEL), on its own thread only, about once per slice and never
 * once it leaves RUNNING or the sysmon is disabled; an M that blocks in
 * read() while RUNNING with a P is marked BLOCKED, and its P handed to a
 * parked idle M (retake = victim + 1, handoff LOST) within the blocked
 * threshold plus scheduling noise; the read then completes with its data
 * (never EINTR) and the signal arrives before read() returns to the
 * caller; without an idle M nothing is handed off and BLOCKED goes back
 * to NONE; an M that blocks the signal is never marked, so keeps its P;
 * and instances with registered, blocked or dead Ms are torn
 * down on close() and process exit without leaking the module.
 */
#include <dirent.h>
#include <sys/wait.h>

#include "goro_test.h"

#define SLICE_NS	(1 * NSEC_PER_MSEC)

FIXTURE(sysmon) {
	int fd;
	struct goro_info info;
	volatile struct goro_mslot *shm;
};

FIXTURE_SETUP(sysmon)
{
	void *p;

	self->fd = goro_open_or_skip();
	ASSERT_EQ(0, goro_get_info(self->fd, &self->info));
	p = mmap(NULL, self->info.shm_size, PROT_READ | PROT_WRITE,
		 MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	self->shm = p;
}

FIXTURE_TEARDOWN(sysmon)
{
	munmap((void *)self->shm, self->info.shm_size);
	if (self->fd >= 0)
		close(self->fd);
}

static int sysmon_config(int fd, struct goro_sysmon_config *cfg)
{
	return goro_ioc(fd, GORO_IOC_SYSMON_CONFIG, cfg);
}

static int sysmon_enable(int fd, uint64_t slice_ns, uint64_t blocked_ns,
			 uint32_t signo)
{
	struct goro_sysmon_config cfg = {
		.slice_ns = slice_ns,
		.blocked_ns = blocked_ns,
		.signo = signo,
		.flags = GORO_SYSMON_ENABLE,
	};

	return sysmon_config(fd, &cfg);
}

static int sysmon_disable(int fd)
{
	struct goro_sysmon_config cfg = { 0 };

	return sysmon_config(fd, &cfg);
}

/* ---- the signal handler: what arrived, where, and what the slot said ---- */

static volatile struct goro_mslot *sig_slot;	/* the M's slot, if any */
static volatile int sig_count;
static volatile int sig_bad_code;		/* si_code != SI_KERNEL */
static volatile pid_t sig_tid;			/* last receiving thread */
static volatile int sig_other_tid;		/* not the expected one */
static volatile pid_t sig_expect_tid;
static volatile uint32_t sig_handoff;		/* slot's handoff then */

static void on_sysmon_signal(int sig, siginfo_t *si, void *uc)
{
	pid_t tid = goro_gettid();

	(void)sig;
	(void)uc;
	if (si->si_code != SI_KERNEL)
		sig_bad_code++;
	if (tid != sig_expect_tid)
		sig_other_tid++;
	sig_tid = tid;
	if (sig_slot)
		sig_handoff = sig_slot->handoff;
	__atomic_add_fetch(&sig_count, 1, __ATOMIC_SEQ_CST);
}

/* No SA_RESTART: a signal that interrupted a syscall would show as EINTR.
 * fn: on_sysmon_signal, or a handler that calls it. */
static int install_handler_fn(int signo,
			      void (*fn)(int, siginfo_t *, void *))
{
	struct sigaction sa = { 0 };

	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sig_count = 0;
	sig_bad_code = 0;
	sig_other_tid = 0;
	sig_slot = NULL;
	sig_handoff = 0xcc;
	return sigaction(signo, &sa, NULL) ? -errno : 0;
}

static int install_handler(int signo)
{
	return install_handler_fn(signo, on_sysmon_signal);
}

static void slot_set_running(volatile struct goro_mslot *ms, uint64_t curg)
{
	ms->curg = curg;
	ms->since_ns = goro_now_ns();
	ms->p = 1;
	__atomic_store_n(&ms->status, GORO_MSTATUS_RUNNING, __ATOMIC_SEQ_CST);
}

/* Polls the module's refcount until it equals want (false after 5 s). */
static bool wait_refcnt(long want, long *last)
{
	uint64_t until = goro_now_ns() + 5 * NSEC_PER_SEC;

	do {
		*last = goro_module_refcnt();
		if (*last == want)
			return true;
		usleep(10000);
	} while (goro_now_ns() < until);
	return false;
}

/* ---- config ---------------------------------------------------------------- */

TEST_F(sysmon, info_reports_sysmon)
{
	EXPECT_EQ(GORO_FEAT_SYSMON, self->info.features & GORO_FEAT_SYSMON);
}

TEST_F(sysmon, defaults_written_back)
{
	struct goro_sysmon_config cfg = { .flags = GORO_SYSMON_ENABLE };

	ASSERT_EQ(0, sysmon_config(self->fd, &cfg));
	EXPECT_EQ(GORO_SYSMON_SLICE_DEFAULT, cfg.slice_ns);
	EXPECT_EQ(GORO_SYSMON_BLOCKED_DEFAULT, cfg.blocked_ns);
	EXPECT_EQ(SIGURG, cfg.signo);
	EXPECT_EQ(GORO_SYSMON_ENABLE, cfg.flags);

	/* disabling validates and writes back the same way */
	memset(&cfg, 0, sizeof(cfg));
	ASSERT_EQ(0, sysmon_config(self->fd, &cfg));
	EXPECT_EQ(GORO_SYSMON_SLICE_DEFAULT, cfg.slice_ns);
	EXPECT_EQ(GORO_SYSMON_BLOCKED_DEFAULT, cfg.blocked_ns);
	EXPECT_EQ(SIGURG, cfg.signo);
	EXPECT_EQ(0, cfg.flags);

	/* explicit values come back unchanged */
	cfg.slice_ns = GORO_SYSMON_SLICE_MIN;
	cfg.blocked_ns = GORO_SYSMON_BLOCKED_MAX;
	cfg.signo = SIGUSR2;
	cfg.flags = GORO_SYSMON_ENABLE;
	ASSERT_EQ(0, sysmon_config(self->fd, &cfg));
	EXPECT_EQ(GORO_SYSMON_SLICE_MIN, cfg.slice_ns);
	EXPECT_EQ(GORO_SYSMON_BLOCKED_MAX, cfg.blocked_ns);
	EXPECT_EQ(SIGUSR2, cfg.signo);
	EXPECT_EQ(0, sysmon_disable(self->fd));
}

/* /sys/module/goro/parameters/NAME: write (returns 0 or -errno), read. */
static int param_write(const char *name, const char *val)
{
	char path[128];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/sys/module/goro/parameters/%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static unsigned long long param_read(const char *name)
{
	char path[128], buf[64] = "";
	int fd;

	snprintf(path, sizeof(path), "/sys/module/goro/parameters/%s", name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = 0;
	close(fd);
	return strtoull(buf, NULL, 0);
}

/* The module parameters are the defaults a zero field takes, and only
 * values the ioctl would accept can be written to them. */
TEST_F(sysmon, module_params_are_the_defaults)
{
	struct goro_sysmon_config cfg = { .flags = 0 };

	if (access("/sys/module/goro/parameters/sysmon_slice_ns", W_OK))
		SKIP(return, "no writable goro module parameters");
	EXPECT_EQ(GORO_SYSMON_SLICE_DEFAULT, param_read("sysmon_slice_ns"));
	EXPECT_EQ(GORO_SYSMON_BLOCKED_DEFAULT, param_read("sysmon_blocked_ns"));
	EXPECT_EQ(SIGURG, param_read("sysmon_signo"));

	ASSERT_EQ(0, param_write("sysmon_slice_ns", "2000000"));
	ASSERT_EQ(0, param_write("sysmon_blocked_ns", "50000"));
	ASSERT_EQ(0, param_write("sysmon_signo", "12"));
	EXPECT_EQ(0, sysmon_config(self->fd, &cfg));
	EXPECT_EQ(2000000, cfg.slice_ns);
	EXPECT_EQ(50000, cfg.blocked_ns);
	EXPECT_EQ(12, cfg.signo);

	EXPECT_EQ(-EINVAL, param_write("sysmon_slice_ns", "99999"));
	EXPECT_EQ(-EINVAL, param_write("sysmon_slice_ns", "10000000001"));
	EXPECT_EQ(-EINVAL, param_write("sysmon_blocked_ns", "4999"));
	EXPECT_EQ(-EINVAL, param_write("sysmon_signo", "9"));
	EXPECT_EQ(-EINVAL, param_write("sysmon_signo", "0"));
	EXPECT_EQ(-EINVAL, param_write("sysmon_signo", "x"));
	EXPECT_EQ(2000000, param_read("sysmon_slice_ns"));
	EXPECT_EQ(12, param_read("sysmon_signo"));

	EXPECT_EQ(0, param_write("sysmon_slice_ns", "10000000"));
	EXPECT_EQ(0, param_write("sysmon_blocked_ns", "20000"));
	EXPECT_EQ(0, param_write("sysmon_signo", "23"));
}

/* The newest debugfs stats file of this process, or "" (none). */
static void newest_dbg(char *path, size_t len)
{
	char prefix[32];
	int best = -1;
	struct dirent *de;
	DIR *d = opendir("/sys/kernel/debug/goro");

	path[0] = 0;
	if (!d)
		return;
	snprintf(prefix, sizeof(prefix), "%d-", getpid());
	while ((de = readdir(d))) {
		int n;

		if (strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		n = atoi(de->d_name + strlen(prefix));
		if (n > best) {
			best = n;
			snprintf(path, len, "/sys/kernel/debug/goro/%s",
				 de->d_name);
		}
	}
	closedir(d);
}

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

/* debugfs goro/<tgid>-<n>: one file per instance, its Ms and sysmon;
 * gone once the instance is released. */
TEST_F(sysmon, debugfs_stats)
{
	char path[300], buf[8192], line[64];
	uint32_t slot;
	int fd;

	if (access("/sys/kernel/debug/goro", R_OK))
		SKIP(return, "no debugfs");
	fd = open("/dev/goro", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	newest_dbg(path, sizeof(path));
	ASSERT_NE(0, path[0]);
	ASSERT_EQ(0, read_file(path, buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "ms 0\n"));
	EXPECT_NE(NULL, strstr(buf, "sysmon off"));

	ASSERT_EQ(0, goro_register(fd, &slot));
	ASSERT_EQ(0, sysmon_enable(fd, 2 * NSEC_PER_MSEC, 0, 0));
	ASSERT_EQ(0, read_file(path, buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "ms 1\n"));
	EXPECT_NE(NULL, strstr(buf, "sysmon on slice_ns 2000000"));
	snprintf(line, sizeof(line), "\n%u %d ", slot, goro_gettid());
	EXPECT_NE(NULL, strstr(buf, line)) TH_LOG("%s", buf);
	EXPECT_EQ(0, sysmon_disable(fd));
	EXPECT_EQ(0, goro_unregister(fd));
	close(fd);
	EXPECT_EQ(-ENOENT, read_file(path, buf, sizeof(buf)));
}

struct cfg_case {
	uint64_t slice_ns, blocked_ns;
	uint32_t signo, flags;
	uint64_t reserved0, reserved1;
	int ret;
};

TEST_F(sysmon, bounds)
{
	static const struct cfg_case cases[] = {
		{ GORO_SYSMON_SLICE_MIN - 1, 0, 0, 1, 0, 0, -EINVAL },
		{ GORO_SYSMON_SLICE_MIN, 0, 0, 1, 0, 0, 0 },
		{ GORO_SYSMON_SLICE_MAX, 0, 0, 1, 0, 0, 0 },
		{ GORO_SYSMON_SLICE_MAX + 1, 0, 0, 1, 0, 0, -EINVAL },
		{ ~0ULL, 0, 0, 1, 0, 0, -EINVAL },
		{ 0, GORO_SYSMON_BLOCKED_MIN - 1, 0, 1, 0, 0, -EINVAL },
		{ 0, GORO_SYSMON_BLOCKED_MIN, 0, 1, 0, 0, 0 },
		{ 0, GORO_SYSMON_BLOCKED_MAX, 0, 1, 0, 0, 0 },
		{ 0, GORO_SYSMON_BLOCKED_MAX + 1, 0, 1, 0, 0, -EINVAL },
		{ 0, ~0ULL, 0, 1, 0, 0, -EINVAL },
		{ 0, 0, SIGKILL, 1, 0, 0, -EINVAL },
		{ 0, 0, SIGSTOP, 1, 0, 0, -EINVAL },
		{ 0, 0, 65, 1, 0, 0, -EINVAL },
		{ 0, 0, ~0U, 1, 0, 0, -EINVAL },
		{ 0, 0, 1, 1, 0, 0, 0 },
		{ 0, 0, 64, 1, 0, 0, 0 },
		{ 0, 0, 0, 2, 0, 0, -EINVAL },
		{ 0, 0, 0, ~0U, 0, 0, -EINVAL },
		{ 0, 0, 0, 1, 1, 0, -EINVAL },
		{ 0, 0, 0, 1, 0, 1, -EINVAL },
		{ 0, 0, 0, 0, 0, ~0ULL, -EINVAL },
		/* disabling checks its fields too */
		{ GORO_SYSMON_SLICE_MIN - 1, 0, 0, 0, 0, 0, -EINVAL },
		{ 0, 0, SIGKILL, 0, 0, 0, -EINVAL },
	};
	unsigned int i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct cfg_case *c = &cases[i];
		struct goro_sysmon_config cfg = {
			.slice_ns = c->slice_ns,
			.blocked_ns = c->blocked_ns,
			.signo = c->signo,
			.flags = c->flags,
			.reserved = { c->reserved0, c->reserved1 },
		};

		EXPECT_EQ(c->ret, sysmon_config(self->fd, &cfg)) {
			TH_LOG("case %u", i);
		}
		/* a refused config is not written back */
		if (c->ret)
			EXPECT_EQ(c->slice_ns, cfg.slice_ns);
	}
	EXPECT_EQ(0, sysmon_disable(self->fd));
}

TEST_F(sysmon, bad_pointers)
{
	struct goro_badptrs bp;
	void *ptr;
	int n;

	ASSERT_EQ(0, goro_badptrs_init(&bp));
	for (n = 0; n < GORO_NR_BADPTRS; n++) {
		if (!goro_badptr(&bp, n, sizeof(struct goro_sysmon_config),
				 true, &ptr))
			continue;
		EXPECT_EQ(-EFAULT, goro_ioc(self->fd, GORO_IOC_SYSMON_CONFIG,
					    ptr)) {
			TH_LOG("bad pointer %d", n);
		}
	}
}

/* ---- preemption ------------------------------------------------------------- */

struct spinner {
	int fd;
	volatile struct goro_mslot *shm;
	uint32_t slot;
	pid_t tid;
	int reg_ret;
	uint64_t run_ns;		/* how long to stay RUNNING */
	uint64_t quiet_ns;		/* then how long to spin not RUNNING */
	uint32_t quiet_status;		/* SCHED or IDLE */
	bool disable_instead;		/* quiet phase: disable the sysmon */
	/* results */
	uint64_t first_ns;		/* first signal after RUNNING */
	int n_running;			/* signals while RUNNING */
	int n_quiet;			/* signals in the quiet phase */
	uint32_t npreempts_end;
	pthread_barrier_t registered;
};

static void spin_until(uint64_t t)
{
	while (goro_now_ns() < t)
		;
}

static void *spinner_fn(void *arg)
{
	struct spinner *sp = arg;
	volatile struct goro_mslot *ms;
	uint64_t t0, end;
	int n0;

	sp->tid = goro_gettid();
	sig_expect_tid = sp->tid;
	sp->reg_ret = goro_register(sp->fd, &sp->slot);
	pthread_barrier_wait(&sp->registered);
	if (sp->reg_ret)
		return NULL;
	ms = &sp->shm[sp->slot];

	slot_set_running(ms, 7);
	t0 = ms->since_ns;
	end = t0 + sp->run_ns;
	while (goro_now_ns() < end) {
		if (!sp->first_ns && sig_count)
			sp->first_ns = goro_now_ns() - t0;
	}
	sp->n_running = sig_count;

	if (sp->disable_instead)
		sysmon_disable(sp->fd);
	else
		__atomic_store_n(&ms->status, sp->quiet_status,
				 __ATOMIC_SEQ_CST);
	/* a signal already on its way may still land: let it */
	spin_until(goro_now_ns() + 2 * NSEC_PER_MSEC);
	n0 = sig_count;
	spin_until(goro_now_ns() + sp->quiet_ns);
	sp->n_quiet = sig_count - n0;
	sp->npreempts_end = ms->npreempts;
	ms->status = GORO_MSTATUS_IDLE;
	goro_unregister(sp->fd);
	return NULL;
}

static void run_spinner(struct __test_metadata *_metadata, int fd,
			volatile struct goro_mslot *shm, uint32_t quiet_status,
			bool disable_instead)
{
	struct spinner sp = {
		.fd = fd,
		.shm = shm,
		.run_ns = 100 * NSEC_PER_MSEC,
		.quiet_ns = 50 * NSEC_PER_MSEC,
		.quiet_status = quiet_status,
		.disable_instead = disable_instead,
	};
	pthread_t th;

	ASSERT_EQ(0, install_handler(SIGUSR1));
	ASSERT_EQ(0, sysmon_enable(fd, SLICE_NS, 0, SIGUSR1));
	pthread_barrier_init(&sp.registered, NULL, 2);
	ASSERT_EQ(0, pthread_create(&th, NULL, spinner_fn, &sp));
	pthread_barrier_wait(&sp.registered);
	ASSERT_EQ(0, sp.reg_ret);
	pthread_join(th, NULL);

	TH_LOG("first signal after %llu us, %d in 100 ms RUNNING, %d after",
	       (unsigned long long)sp.first_ns / 1000, sp.n_running,
	       sp.n_quiet);
	/*
	 * ~3 slices on hardware; an emulated (TCG) VM has shown up to
	 * 15 ms from the slot write to the handler, so allow 50.
	 */
	EXPECT_NE(0, sp.first_ns);
	EXPECT_GT(50 * NSEC_PER_MSEC * test_slow(), sp.first_ns);
	/* again and again while it stays, but at most once per slice */
	EXPECT_LE(3, sp.n_running);
	EXPECT_GE(100 * NSEC_PER_MSEC / SLICE_NS + 1, sp.n_running);
	EXPECT_EQ(0, sp.n_quiet);
	EXPECT_EQ(0, sig_bad_code);
	EXPECT_EQ(0, sig_other_tid);
	EXPECT_EQ(sp.tid, sig_tid);
	EXPECT_EQ((uint32_t)sig_count, sp.npreempts_end);
	sysmon_disable(fd);
}

TEST_F(sysmon, preempt_running_then_sched)
{
	run_spinner(_metadata, self->fd, self->shm, GORO_MSTATUS_SCHED, false);
}

TEST_F(sysmon, preempt_running_then_idle)
{
	run_spinner(_metadata, self->fd, self->shm, GORO_MSTATUS_IDLE, false);
}

TEST_F(sysmon, preempt_stops_when_disabled)
{
	run_spinner(_metadata, self->fd, self->shm, GORO_MSTATUS_RUNNING,
		    true);
}

/* The slow handler's first call runs 5 slices with the signal blocked. */
static volatile int slow_pending = -1;	/* signo pending as it returned */

static void on_slow_signal(int sig, siginfo_t *si, void *uc)
{
	sigset_t set;

	on_sysmon_signal(sig, si, uc);
	if (sig_count != 1)
		return;
	spin_until(goro_now_ns() + 5 * SLICE_NS);
	slow_pending = sigpending(&set) ? -1 : sigismember(&set, sig);
}

/*
 * No signal while the last one's handler runs (it has the signal
 * blocked): it would be delivered the moment the handler returns, into
 * whatever the handler set up (libgoro: the preemption it started), and
 * find no safe point.  The next one comes a slice after the M took the
 * last, and keeps coming while the pair stays.
 */
TEST_F(sysmon, preempt_not_while_handler_runs)
{
	volatile struct goro_mslot *ms;
	uint32_t slot;
	uint64_t end;

	ASSERT_EQ(0, install_handler_fn(SIGUSR1, on_slow_signal));
	sig_expect_tid = goro_gettid();
	ASSERT_EQ(0, sysmon_enable(self->fd, SLICE_NS, 0, SIGUSR1));
	ASSERT_EQ(0, goro_register(self->fd, &slot));
	ms = &self->shm[slot];
	slot_set_running(ms, 11);
	end = goro_now_ns() + 200 * NSEC_PER_MSEC * test_slow();
	while (goro_now_ns() < end && sig_count < 3)
		;
	ms->status = GORO_MSTATUS_IDLE;
	/* a signal already on its way may still land: let it */
	spin_until(goro_now_ns() + 2 * NSEC_PER_MSEC);
	EXPECT_EQ(0, sysmon_disable(self->fd));
	EXPECT_EQ(0, slow_pending);
	EXPECT_LE(3, sig_count);
	EXPECT_EQ(0, sig_bad_code);
	EXPECT_EQ(0, sig_other_tid);
	EXPECT_EQ((uint32_t)sig_count, ms->npreempts);
}

/* A new goroutine (a new pair) starts a new slice: no signal before it. */
TEST_F(sysmon, preempt_new_pair_new_slice)
{
	volatile struct goro_mslot *ms;
	uint32_t slot;
	uint64_t t, end;
	int g = 100;

	ASSERT_EQ(0, install_handler(SIGUSR1));
	sig_expect_tid = goro_gettid();
	ASSERT_EQ(0, sysmon_enable(self->fd, 50 * NSEC_PER_MSEC, 0, SIGUSR1));
	ASSERT_EQ(0, goro_register(self->fd, &slot));
	ms = &self->shm[slot];
	/* a new goroutine every 5 ms for 300 ms: never 50 ms on one */
	end = goro_now_ns() + 300 * NSEC_PER_MSEC;
	while ((t = goro_now_ns()) < end) {
		slot_set_running(ms, g++);
		spin_until(t + 5 * NSEC_PER_MSEC);
	}
	ms->status = GORO_MSTATUS_IDLE;
	EXPECT_EQ(0, sig_count);
	EXPECT_EQ(0, ms->npreempts);
	EXPECT_EQ(0, sysmon_disable(self->fd));
}

/* ---- hand-off -------------------------------------------------------------- */

struct blocker {
	int fd;
	volatile struct goro_mslot *shm;
	int pipe_rd;
	uint32_t slot;
	pid_t tid;
	int reg_ret;
	ssize_t rd;			/* read()'s result */
	int rd_errno;
	char byte;
	int sigs_at_return;		/* signals seen when read() returned */
	uint32_t handoff_at_return;
	bool mask_signal;		/* block SIGUSR1 in its thread */
	pthread_barrier_t registered;
};

/* read(2) by hand, with known values in r12 and r15: the kernel saves
 * the registers of a block into the slot (GORO_FEAT_BLOCKREGS). */
#define BK_MARK12	0x5a17c0de12345678ULL
#define BK_MARK15	0x0fedcba987654321ULL

static ssize_t read_marked(int fd, char *buf)
{
	register uint64_t r12 asm("r12") = BK_MARK12;
	register uint64_t r15 asm("r15") = BK_MARK15;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"((long)SYS_read), "D"((long)fd), "S"(buf),
			   "d"(1L), "r"(r12), "r"(r15)
			 : "rcx", "r11", "memory");
	if (ret < 0) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

static void *blocker_fn(void *arg)
{
	struct blocker *bk = arg;
	volatile struct goro_mslot *ms;

	bk->tid = goro_gettid();
	sig_expect_tid = bk->tid;
	if (bk->mask_signal) {
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
	}
	bk->reg_ret = goro_register(bk->fd, &bk->slot);
	pthread_barrier_wait(&bk->registered);
	if (bk->reg_ret)
		return NULL;
	ms = &bk->shm[bk->slot];
	sig_slot = ms;
	/* only now: the barrier's futex wait would count as blocking too */
	slot_set_running(ms, 1);

	bk->rd = read_marked(bk->pipe_rd, &bk->byte);
	/* the very first thing after read() returns */
	bk->sigs_at_return = sig_count;
	bk->rd_errno = bk->rd < 0 ? errno : 0;
	bk->handoff_at_return = ms->handoff;
	/* what libgoro's handler would do once it holds a P again */
	__atomic_compare_exchange_n(&ms->handoff,
				    &(uint32_t){ GORO_HANDOFF_LOST },
				    GORO_HANDOFF_NONE, false,
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	ms->status = GORO_MSTATUS_IDLE;
	goro_unregister(bk->fd);
	return NULL;
}

struct idler {
	int fd;
	volatile struct goro_mslot *shm;
	uint32_t slot;
	pid_t tid;
	int reg_ret;
	int park_ret;
	uint64_t woke_ns;
	uint32_t retake;
	uint64_t park_ns;		/* 0: 10 s */
	pthread_barrier_t registered;
};

static void *idler_fn(void *arg)
{
	struct idler *id = arg;

	id->tid = goro_gettid();
	id->reg_ret = goro_register(id->fd, &id->slot);
	if (!id->reg_ret)
		id->shm[id->slot].status = GORO_MSTATUS_IDLE;
	pthread_barrier_wait(&id->registered);
	if (id->reg_ret)
		return NULL;
	if (!id->park_ns)
		id->park_ns = 10 * NSEC_PER_SEC;
	id->park_ret = goro_park(id->fd, goro_now_ns() + id->park_ns);
	id->woke_ns = goro_now_ns();
	id->retake = id->shm[id->slot].retake;
	/* taken over: user space clears retake */
	id->shm[id->slot].retake = 0;
	goro_unregister(id->fd);
	return NULL;
}

/* A blocker M, registered, RUNNING with a P and asleep in read() on
 * pipe_rd; mask_signal: with SIGUSR1 blocked in its thread. */
static void start_blocker(struct __test_metadata *_metadata,
			  struct blocker *bk, pthread_t *th, int fd,
			  volatile struct goro_mslot *shm, int pipe_rd,
			  bool mask_signal)
{
	memset(bk, 0, sizeof(*bk));
	bk->mask_signal = mask_signal;
	bk->fd = fd;
	bk->shm = shm;
	bk->pipe_rd = pipe_rd;
	bk->rd = -2;
	pthread_barrier_init(&bk->registered, NULL, 2);
	ASSERT_EQ(0, pthread_create(th, NULL, blocker_fn, bk));
	pthread_barrier_wait(&bk->registered);
	ASSERT_EQ(0, bk->reg_ret);
	/* asleep in its read() */
	ASSERT_TRUE(goro_wait_in_syscall(getpid(), bk->tid, SYS_read, 10000));
}

/* A pipe for a blocker to read, SIGUSR1's handler, and the sysmon on
 * with the longest slice (no overrun signal) and a 20 us threshold. */
static void arm_handoff(struct __test_metadata *_metadata, int fd,
			int pfd[2])
{
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(0, install_handler(SIGUSR1));
	ASSERT_EQ(0, sysmon_enable(fd, GORO_SYSMON_SLICE_MAX, 20000,
				   SIGUSR1));
}

/* An idle M (id's fd, shm and park_ns set), registered and parked. */
static void start_idler(struct __test_metadata *_metadata,
			struct idler *id, pthread_t *th)
{
	pthread_barrier_init(&id->registered, NULL, 2);
	ASSERT_EQ(0, pthread_create(th, NULL, idler_fn, id));
	pthread_barrier_wait(&id->registered);
	ASSERT_EQ(0, id->reg_ret);
	ASSERT_TRUE(goro_wait_in_ioctl(getpid(), id->tid, 10000));
}

TEST_F(sysmon, handoff_to_parked_idle_m)
{
	struct blocker bk;
	struct idler id = { .fd = self->fd, .shm = self->shm };
	pthread_t tb, ti;
	uint64_t t_blocked;
	int pfd[2];

	arm_handoff(_metadata, self->fd, pfd);

	start_idler(_metadata, &id, &ti);

	start_blocker(_metadata, &bk, &tb, self->fd, self->shm, pfd[0],
		      false);
	t_blocked = goro_now_ns();

	/* the idle M is woken to take the blocked M's P */
	pthread_join(ti, NULL);
	EXPECT_EQ(0, id.park_ret);
	EXPECT_EQ(bk.slot + 1, id.retake);
	TH_LOG("idle M woke %lld us after the blocker was seen asleep",
	       (long long)(id.woke_ns - t_blocked) / 1000);
	/* "a few ms"; generous for an emulated VM */
	EXPECT_GT(t_blocked + 500 * NSEC_PER_MSEC, id.woke_ns);
	EXPECT_EQ(GORO_HANDOFF_LOST, self->shm[bk.slot].handoff);
	EXPECT_EQ(1, self->shm[bk.slot].nhandoffs);
	EXPECT_EQ(0, sig_count);
	/* the registers it blocked with, for the collector */
	EXPECT_EQ(BK_MARK12, self->shm[bk.slot].regs[GORO_REG_R8 + 4]);
	EXPECT_EQ(BK_MARK15, self->shm[bk.slot].regs[GORO_REG_R8 + 7]);
	EXPECT_EQ((uint64_t)pfd[0], self->shm[bk.slot].regs[GORO_REG_DI]);
	EXPECT_EQ((uint64_t)(uintptr_t)&bk.byte,
		  self->shm[bk.slot].regs[GORO_REG_SI]);
	EXPECT_EQ(1, self->shm[bk.slot].regs[GORO_REG_DX]);

	/* the blocked read completes normally, then the signal arrives */
	ASSERT_EQ(1, write(pfd[1], "x", 1));
	pthread_join(tb, NULL);
	EXPECT_EQ(1, bk.rd);
	EXPECT_EQ(0, bk.rd_errno);
	EXPECT_EQ('x', bk.byte);
	EXPECT_EQ(1, bk.sigs_at_return);
	EXPECT_EQ(GORO_HANDOFF_LOST, sig_handoff);
	EXPECT_EQ(GORO_HANDOFF_LOST, bk.handoff_at_return);
	EXPECT_EQ(0, sig_bad_code);
	EXPECT_EQ(0, sig_other_tid);
	EXPECT_EQ(1, sig_count);
	/* the preemption count is for slices only */
	EXPECT_EQ(0, self->shm[bk.slot].npreempts);
	EXPECT_EQ(0, sysmon_disable(self->fd));
	close(pfd[0]);
	close(pfd[1]);
}

/* Let bk's read() complete with c: it returns normally, was not told
 * of a hand-off and got no signal; then the sysmon off, the pipe gone. */
static void end_read_kept_p(struct __test_metadata *_metadata, int fd,
			    struct blocker *bk, pthread_t tb, int pfd[2],
			    char c)
{
	ASSERT_EQ(1, write(pfd[1], &c, 1));
	pthread_join(tb, NULL);
	EXPECT_EQ(1, bk->rd);
	EXPECT_EQ(c, bk->byte);
	EXPECT_EQ(GORO_HANDOFF_NONE, bk->handoff_at_return);
	EXPECT_EQ(0, sig_count);
	EXPECT_EQ(0, sysmon_disable(fd));
	close(pfd[0]);
	close(pfd[1]);
}

TEST_F(sysmon, no_idle_m_no_handoff)
{
	struct blocker bk;
	pthread_t tb;
	int pfd[2];

	arm_handoff(_metadata, self->fd, pfd);

	start_blocker(_metadata, &bk, &tb, self->fd, self->shm, pfd[0],
		      false);
	usleep(50000);
	EXPECT_EQ(GORO_HANDOFF_BLOCKED, self->shm[bk.slot].handoff);
	EXPECT_EQ(0, self->shm[bk.slot].nhandoffs);

	end_read_kept_p(_metadata, self->fd, &bk, tb, pfd, 'y');
}

/*
 * An M that blocks the sysmon's signal keeps its P: the signal is what
 * would tell it the P is gone (an M that never took it ran on without
 * its P: "goready: no P" under libgoro).  Not marked BLOCKED, so no idle
 * M is woken for it, and no signal is sent.
 */
TEST_F(sysmon, signal_blocked_no_handoff)
{
	struct blocker bk;
	struct idler id = { .fd = self->fd, .shm = self->shm,
			    .park_ns = 400 * NSEC_PER_MSEC };
	pthread_t tb, ti;
	int pfd[2];

	arm_handoff(_metadata, self->fd, pfd);
	start_idler(_metadata, &id, &ti);

	start_blocker(_metadata, &bk, &tb, self->fd, self->shm, pfd[0],
		      true);
	/* the idle M sleeps out its deadline: nobody took it */
	pthread_join(ti, NULL);
	EXPECT_EQ(-ETIMEDOUT, id.park_ret);
	EXPECT_EQ(0, id.retake);
	EXPECT_EQ(GORO_HANDOFF_NONE, self->shm[bk.slot].handoff);
	EXPECT_EQ(0, self->shm[bk.slot].nhandoffs);

	end_read_kept_p(_metadata, self->fd, &bk, tb, pfd, 'w');
}

/* Disabled: a blocking M is not even marked. */
TEST_F(sysmon, disabled_no_blocked_mark)
{
	struct blocker bk;
	pthread_t tb;
	int pfd[2];

	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(0, install_handler(SIGUSR1));
	start_blocker(_metadata, &bk, &tb, self->fd, self->shm, pfd[0],
		      false);
	usleep(20000);
	EXPECT_EQ(GORO_HANDOFF_NONE, self->shm[bk.slot].handoff);
	ASSERT_EQ(1, write(pfd[1], "z", 1));
	pthread_join(tb, NULL);
	EXPECT_EQ(1, bk.rd);
	EXPECT_EQ(0, sig_count);
	close(pfd[0]);
	close(pfd[1]);
}

/* ---- lifetime -------------------------------------------------------------- */

/*
 * The mapping holds the file too: replace it by anonymous memory (so
 * that the teardown's munmap stays valid) before the close() that is
 * to release the instance.
 */
static void *drop_mapping(struct __test_metadata *_metadata,
			  FIXTURE_DATA(sysmon) *self)
{
	void *p;

	munmap((void *)self->shm, self->info.shm_size);
	p = mmap(NULL, self->info.shm_size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	EXPECT_NE(MAP_FAILED, p);
	self->shm = p;
	return p;
}

/* close() while Ms are registered and blocked; they wake up afterwards. */
TEST_F(sysmon, close_with_blocked_ms)
{
	struct blocker bk[2];
	struct idler id = { .fd = self->fd, .shm = self->shm };
	pthread_t tb[2], ti;
	int pfd[2][2], i;
	long before, last;

	before = goro_module_refcnt_settled();
	ASSERT_LT(0, before);
	ASSERT_EQ(0, install_handler(SIGUSR1));
	/* the longest slice: a blocker that takes over 1 ms from its
	 * RUNNING mark into read() (a debug kernel) would get the overrun
	 * signal there, and read() would end in EINTR before close() */
	ASSERT_EQ(0, sysmon_enable(self->fd, GORO_SYSMON_SLICE_MAX, 20000,
				   SIGUSR1));

	/* one hand-off happens first, so that a LOST M is torn down too */
	start_idler(_metadata, &id, &ti);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, pipe(pfd[i]));
		start_blocker(_metadata, &bk[i], &tb[i], self->fd, self->shm,
			      pfd[i][0], false);
	}
	pthread_join(ti, NULL);
	EXPECT_EQ(0, id.park_ret);

	/* the instance goes while both are asleep in read() */
	ASSERT_NE(MAP_FAILED, drop_mapping(_metadata, self));
	for (i = 0; i < 2; i++)
		bk[i].shm = self->shm;
	sig_slot = NULL;
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	usleep(20000);

	for (i = 0; i < 2; i++) {
		ASSERT_EQ(1, write(pfd[i][1], "c", 1));
		pthread_join(tb[i], NULL);
		EXPECT_EQ(1, bk[i].rd);
		close(pfd[i][0]);
		close(pfd[i][1]);
	}
	/* an M woken after release() gets no signal: it has no instance */
	EXPECT_EQ(0, sig_count);
	EXPECT_TRUE(wait_refcnt(before - 1, &last)) {
		TH_LOG("module refcnt %ld, want %ld", last, before - 1);
	}
}

static void *exit_registered_fn(void *arg)
{
	struct blocker *bk = arg;

	bk->reg_ret = goro_register(bk->fd, &bk->slot);
	if (!bk->reg_ret)
		slot_set_running(&bk->shm[bk->slot], 3);
	/* exits without M_UNREGISTER, its slot still RUNNING */
	return NULL;
}

TEST_F(sysmon, thread_exits_registered)
{
	struct blocker bk = { .fd = self->fd, .shm = self->shm };
	long before, last;
	pthread_t th;
	uint32_t slot;

	before = goro_module_refcnt_settled();
	ASSERT_LT(0, before);
	ASSERT_EQ(0, install_handler(SIGUSR1));
	ASSERT_EQ(0, sysmon_enable(self->fd, SLICE_NS, 20000, SIGUSR1));
	ASSERT_EQ(0, pthread_create(&th, NULL, exit_registered_fn, &bk));
	pthread_join(th, NULL);
	ASSERT_EQ(0, bk.reg_ret);
	/* the dead M's slot says RUNNING: the sysmon must leave it alone */
	usleep(30000);
	EXPECT_EQ(0, sig_count);

	/* a new M, with the dead one still in the table */
	ASSERT_EQ(0, goro_register(self->fd, &slot));
	EXPECT_NE(bk.slot, slot);
	ASSERT_NE(MAP_FAILED, drop_mapping(_metadata, self));
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	/* the dead thread's notifier is dropped once it is fully gone */
	EXPECT_TRUE(wait_refcnt(before - 1, &last)) {
		TH_LOG("module refcnt %ld, want %ld", last, before - 1);
	}
}

/* The child: its own instance, a spinning M and a blocked one, then exit. */
static int child_main(int inherited_fd)
{
	struct goro_sysmon_config cfg = { .flags = GORO_SYSMON_ENABLE };
	volatile struct goro_mslot *shm;
	struct goro_info info;
	struct blocker bk;
	pthread_t tb;
	uint32_t slot;
	int fd, pfd[2];

	/* the parent's instance is not ours */
	if (goro_ioc(inherited_fd, GORO_IOC_SYSMON_CONFIG, &cfg) != -EPERM)
		return 10;
	fd = open(GORO_DEV, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 11;
	if (goro_get_info(fd, &info))
		return 18;
	shm = mmap(NULL, info.shm_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, 0);
	if (shm == MAP_FAILED)
		return 12;
	/*
	 * A slice far longer than the blocker needs to fall asleep in
	 * read() after it says RUNNING: with 1 ms, an emulated CPU held it
	 * back past the slice once (a make check in the VM, 6.1), the
	 * preemption signal came first, read() failed with EINTR, and the
	 * blocker was gone before it was ever seen asleep (exit 16).
	 */
	if (install_handler(SIGUSR1) ||
	    sysmon_enable(fd, 50 * NSEC_PER_MSEC, 20000, SIGUSR1))
		return 13;
	if (pipe(pfd))
		return 14;

	memset(&bk, 0, sizeof(bk));
	bk.fd = fd;
	bk.shm = shm;
	bk.pipe_rd = pfd[0];
	pthread_barrier_init(&bk.registered, NULL, 2);
	if (pthread_create(&tb, NULL, blocker_fn, &bk))
		return 15;
	pthread_barrier_wait(&bk.registered);
	if (bk.reg_ret || !goro_wait_in_syscall(getpid(), bk.tid, SYS_read, 10000))
		return 16;

	/* the main thread spins RUNNING until it has been preempted */
	sig_expect_tid = goro_gettid();
	if (goro_register(fd, &slot))
		return 17;
	slot_set_running(&shm[slot], 9);
	while (!sig_count)
		;
	/* exit with the sysmon on, one M asleep in read(), fd open */
	exit(0);
}

TEST_F(sysmon, fork_and_exit_while_enabled)
{
	long before, last;
	uint32_t slot;
	pid_t pid;
	int status;

	before = goro_module_refcnt_settled();
	ASSERT_LT(0, before);
	ASSERT_EQ(0, sysmon_enable(self->fd, SLICE_NS, 20000, SIGURG));
	ASSERT_EQ(0, goro_register(self->fd, &slot));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(child_main(self->fd));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));

	/* the parent's instance works on */
	EXPECT_EQ(0, goro_unregister(self->fd));
	EXPECT_EQ(0, sysmon_disable(self->fd));
	EXPECT_TRUE(wait_refcnt(before, &last)) {
		TH_LOG("module refcnt %ld, want %ld", last, before);
	}
}

TEST_HARNESS_MAIN
