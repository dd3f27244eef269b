// SPDX-License-Identifier: GPL-2.0
/*
 * proc_test: an instance belongs to the process that opened it.
 *
 * What is proven here: a fork()ed child that inherited the fd gets
 * -EPERM from every ioctl and from mmap, and cannot wake its parent's
 * Ms; another process's own instance cannot reach this one's slots
 * (-ESRCH there, no wake-up counted or delivered here); a process
 * killed with SIGKILL while its threads are parked or sleeping on a note
 * leaves nothing behind (the module's reference count comes back, so
 * the final rmmod of the VM run succeeds); a thread that exits while
 * registered is not unparkable (-ESRCH) and its slot is reused when the
 * table is full; closing the fd under a parked thread is safe.
 */
#include <dirent.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "goro_test.h"

FIXTURE(proc) {
	int fd;
	struct goro_info info;
};

FIXTURE_SETUP(proc)
{
	self->fd = goro_open_or_skip();
	ASSERT_EQ(0, goro_get_info(self->fd, &self->info));
}

FIXTURE_TEARDOWN(proc)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* The exit status of child pid, or -1 if it did not exit normally. */
static int wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- fork: the inherited fd is the parent's ------------------------------ */

/*
 * The child's checks; returns 0 when all pass, else the number of the
 * first that failed (the harness's ASSERTs belong to the test process,
 * not to this child).
 */
static int child_uses_parent_fd(int fd, uint32_t parent_slot, void *note)
{
	struct goro_info info = { 0 };
	void *p;

	if (goro_ioc(fd, GORO_IOC_INFO, &info) != -EPERM)
		return 1;
	if (goro_register(fd, NULL) != -EPERM)
		return 2;
	if (goro_unregister(fd) != -EPERM)
		return 3;
	if (goro_park(fd, 0) != -EPERM)
		return 4;
	if (goro_unpark(fd, parent_slot) != -EPERM)
		return 5;
	if (goro_switch(fd, parent_slot, 0) != -EPERM)
		return 6;
	if (goro_note_wakeup(fd, note) != -EPERM)
		return 7;
	if (goro_note_sleep(fd, note, 0) != -EPERM)
		return 8;
	if (goro_note_clear(fd, note) != -EPERM)
		return 9;
	/* even an unknown command: the owner check comes first */
	if (goro_ioc(fd, _IO(GORO_IOC_MAGIC, 0x7f), NULL) != -EPERM)
		return 10;
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED || errno != EPERM)
		return 11;
	return 0;
}

TEST_F(proc, forked_child_gets_eperm)
{
	static uint64_t note;
	struct goro_mslot *shm;
	uint32_t slot;
	pid_t pid;

	shm = mmap(NULL, self->info.shm_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, shm);
	ASSERT_EQ(0, goro_register(self->fd, &slot));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(child_uses_parent_fd(self->fd, slot, &note));
	EXPECT_EQ(0, wait_child(pid));

	/* the child gave no token and woke no note */
	EXPECT_EQ(-ETIMEDOUT,
		  goro_park(self->fd, goro_now_ns() + 20 * NSEC_PER_MSEC));
	EXPECT_EQ(-ETIMEDOUT, goro_note_sleep(self->fd, &note, 0));
	EXPECT_EQ(0, shm[slot].nwakes);
	/* the inherited mapping (MAP_SHARED) is still the same area */
	EXPECT_EQ(goro_gettid(), (pid_t)shm[slot].tid);
	EXPECT_EQ(0, goro_unregister(self->fd));
	munmap(shm, self->info.shm_size);
}

/* The child's close() of its copy of the fd does not end the instance. */
TEST_F(proc, child_close_keeps_instance)
{
	uint32_t slot;
	pid_t pid;

	ASSERT_EQ(0, goro_register(self->fd, &slot));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(self->fd);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(0, goro_unpark(self->fd, slot));
	EXPECT_EQ(0, goro_park(self->fd, 0));
	EXPECT_EQ(0, goro_unregister(self->fd));
}

/* ---- two processes, two instances ---------------------------------------- */

#define ISO_THREADS	4

struct iso_parker {
	int fd;
	uint64_t deadline;
	pid_t tid;
	uint32_t slot;
	int reg_ret;
	volatile int ret;	/* 1 until the park returns */
	pthread_barrier_t *registered;
};

static void *iso_parker_fn(void *arg)
{
	struct iso_parker *ip = arg;

	ip->tid = goro_gettid();
	ip->reg_ret = goro_register(ip->fd, &ip->slot);
	pthread_barrier_wait(ip->registered);
	ip->ret = ip->reg_ret ? ip->reg_ret : goro_park(ip->fd, ip->deadline);
	return NULL;
}

/*
 * Process B: its own instance, its own M in slot 0.  Unparking A's slot
 * numbers reaches only B's instance: its own M (0) and free slots
 * (-ESRCH); waking A's note addresses wakes only B's notes.
 */
static int other_process(const uint64_t *a_note, int nslots)
{
	int fd = open(GORO_DEV, O_RDWR | O_CLOEXEC);
	uint32_t slot;
	int bad = 0;

	if (fd < 0)
		return 1;
	if (goro_register(fd, &slot) || slot != 0)
		bad |= 2;
	if (goro_unpark(fd, 0))
		bad |= 4;
	for (int s = 1; s < nslots; s++)
		if (goro_unpark(fd, s) != -ESRCH)
			bad |= 8;
	if (goro_note_wakeup(fd, a_note))
		bad |= 16;
	/* B's own token was delivered, to B */
	if (goro_park(fd, 0))
		bad |= 32;
	close(fd);
	return bad;
}

TEST_F(proc, other_process_cannot_reach_slots)
{
	struct iso_parker ip[ISO_THREADS];
	pthread_t th[ISO_THREADS];
	pthread_barrier_t registered;
	struct goro_mslot *shm;
	static uint64_t note;
	pid_t pid;

	shm = mmap(NULL, self->info.shm_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, shm);
	/*
	 * A's Ms take slots 0..ISO_THREADS-1 and park (a far deadline only
	 * as a safety net); B acts while they sleep.
	 */
	pthread_barrier_init(&registered, NULL, ISO_THREADS + 1);
	for (int i = 0; i < ISO_THREADS; i++) {
		ip[i] = (struct iso_parker){ .fd = self->fd,
					     .deadline = goro_now_ns() +
							 60 * NSEC_PER_SEC,
					     .ret = 1,
					     .registered = &registered };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, iso_parker_fn,
					    &ip[i]));
	}
	pthread_barrier_wait(&registered);
	for (int i = 0; i < ISO_THREADS; i++) {
		ASSERT_EQ(0, ip[i].reg_ret);
		ASSERT_TRUE(goro_wait_in_ioctl(getpid(), ip[i].tid, 10000));
	}

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(other_process(&note, ISO_THREADS + 2));
	EXPECT_EQ(0, wait_child(pid));

	/* B delivered nothing here: no wake counted, every M still asleep */
	usleep(100000);
	for (int i = 0; i < ISO_THREADS; i++) {
		EXPECT_EQ(0, shm[ip[i].slot].nwakes) TH_LOG("A's M %d", i);
		EXPECT_EQ(1, ip[i].ret) TH_LOG("A's M %d", i);
		EXPECT_TRUE(goro_wait_in_ioctl(getpid(), ip[i].tid, 1000));
	}
	EXPECT_EQ(-ETIMEDOUT, goro_note_sleep(self->fd, &note, 0));

	/* A's own unparks do reach them */
	for (int i = 0; i < ISO_THREADS; i++)
		EXPECT_EQ(0, goro_unpark(self->fd, ip[i].slot));
	for (int i = 0; i < ISO_THREADS; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, ip[i].ret) TH_LOG("A's M %d", i);
		EXPECT_EQ(1, shm[ip[i].slot].nwakes);
	}
	munmap(shm, self->info.shm_size);
}

/* ---- death of a process with parked threads ------------------------------ */

static void *child_note_sleeper(void *arg)
{
	int fd = *(int *)arg;
	static uint64_t note;

	goro_note_sleep(fd, &note, GORO_NO_DEADLINE);
	return NULL;
}

static void *child_switcher(void *arg)
{
	int fd = *(int *)arg;

	/* slot 0 is the child's main thread, parked */
	if (!goro_register(fd, NULL))
		goro_switch(fd, 0, GORO_NO_DEADLINE);
	return NULL;
}

/*
 * The child: opens, maps, registers and parks forever on its main
 * thread, with one more thread asleep on a note and another in
 * M_SWITCH (which wakes main once; main parks again).
 */
static void parked_child(int ready_fd)
{
	pthread_t t1, t2;
	void *shm;
	int fd;

	fd = open(GORO_DEV, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		_exit(1);
	shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (shm == MAP_FAILED)
		_exit(2);
	if (goro_register(fd, NULL))
		_exit(3);
	if (pthread_create(&t1, NULL, child_note_sleeper, &fd) ||
	    pthread_create(&t2, NULL, child_switcher, &fd))
		_exit(4);
	if (write(ready_fd, "r", 1) != 1)
		_exit(5);
	for (;;)
		goro_park(fd, GORO_NO_DEADLINE);
}

/* How many threads of pid sleep in an ioctl (each given up to 10 s). */
static int count_in_ioctl(pid_t pid)
{
	struct dirent *de;
	char path[64];
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (goro_wait_in_ioctl(pid, atoi(de->d_name), 10000))
			n++;
	}
	closedir(d);
	return n;
}

TEST_F(proc, sigkill_parked_child)
{
	long before, after = -1;
	int pipefd[2];
	char c;
	pid_t pid;
	int status;

	before = goro_module_refcnt_settled();
	if (before < 0)
		SKIP(return, "%s unreadable", GORO_MODULE_REFCNT);

	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(pipefd[0]);
		parked_child(pipefd[1]);
	}
	close(pipefd[1]);
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	close(pipefd[0]);

	/* main and the switcher in M_PARK, the note sleeper: all asleep */
	EXPECT_EQ(3, count_in_ioctl(pid));
	/*
	 * the child's open holds one more module reference, and each of
	 * its two Ms one (its preempt notifier runs module code)
	 */
	EXPECT_EQ(before + 3, goro_module_refcnt());

	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	/* release() runs before the exit completes, but the preempt
	 * notifiers of the dead threads are reaped by a delayed work once
	 * their last context switch is over: give a slow VM time */
	for (int i = 0; i < 1000; i++) {
		after = goro_module_refcnt();
		if (after == before)
			break;
		usleep(10000);
	}
	EXPECT_EQ(before, after);
}

/* ---- threads that exit while registered ---------------------------------- */

static void *register_and_exit(void *arg)
{
	struct iso_parker *ip = arg;

	ip->tid = goro_gettid();
	ip->reg_ret = goro_register(ip->fd, &ip->slot);
	return NULL;
}

TEST_F(proc, exited_thread_is_esrch)
{
	struct iso_parker ip = { .fd = self->fd };
	pthread_t th;

	ASSERT_EQ(0, pthread_create(&th, NULL, register_and_exit, &ip));
	ASSERT_EQ(0, pthread_join(th, NULL));
	ASSERT_EQ(0, ip.reg_ret);
	/* the thread is gone: no wake-up, no signal to a reused tid */
	EXPECT_EQ(-ESRCH, goro_unpark(self->fd, ip.slot));
	ASSERT_EQ(0, goro_register(self->fd, NULL));
	EXPECT_EQ(-ESRCH, goro_switch(self->fd, ip.slot, 0));
	EXPECT_EQ(0, goro_unregister(self->fd));
}

/*
 * Fill every slot but one with live Ms, then let a thread register
 * into the last one and exit without unregistering: the next register
 * must reuse that slot (reaped) rather than fail with -ENOSPC.
 */
struct filler {
	int fd;
	int ret;
	uint32_t slot;
	pthread_barrier_t *registered, *release;
};

static void *filler_fn(void *arg)
{
	struct filler *f = arg;

	f->ret = goro_register(f->fd, &f->slot);
	pthread_barrier_wait(f->registered);
	pthread_barrier_wait(f->release);
	if (!f->ret)
		f->ret = goro_unregister(f->fd);
	return NULL;
}

TEST_F_TIMEOUT(proc, full_table_reaps_exited, 180)
{
	const unsigned int n = self->info.max_slots - 1;
	struct iso_parker ghost = { .fd = self->fd };
	pthread_barrier_t registered, release;
	struct filler *f;
	pthread_t *tids, th;
	pthread_attr_t attr;
	uint32_t slot;

	f = calloc(n, sizeof(*f));
	tids = calloc(n, sizeof(*tids));
	ASSERT_TRUE(f && tids);
	ASSERT_EQ(0, pthread_attr_init(&attr));
	ASSERT_EQ(0, pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN));
	ASSERT_EQ(0, pthread_barrier_init(&registered, NULL, n + 1));
	ASSERT_EQ(0, pthread_barrier_init(&release, NULL, n + 1));
	for (unsigned int i = 0; i < n; i++) {
		f[i] = (struct filler){ .fd = self->fd,
					.registered = &registered,
					.release = &release };
		ASSERT_EQ(0, pthread_create(&tids[i], &attr, filler_fn, &f[i]));
	}
	pthread_barrier_wait(&registered);
	for (unsigned int i = 0; i < n; i++) {
		EXPECT_EQ(0, f[i].ret) TH_LOG("filler %u", i);
	}

	/* the last slot: taken by a thread that then exits registered */
	ASSERT_EQ(0, pthread_create(&th, NULL, register_and_exit, &ghost));
	ASSERT_EQ(0, pthread_join(th, NULL));
	ASSERT_EQ(0, ghost.reg_ret);

	EXPECT_EQ(0, goro_register(self->fd, &slot));
	EXPECT_EQ(ghost.slot, slot);
	/* and now the table is full of live Ms again */
	ghost.reg_ret = 1;
	ASSERT_EQ(0, pthread_create(&th, NULL, register_and_exit, &ghost));
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(-ENOSPC, ghost.reg_ret);
	EXPECT_EQ(0, goro_unregister(self->fd));

	pthread_barrier_wait(&release);
	for (unsigned int i = 0; i < n; i++) {
		pthread_join(tids[i], NULL);
		EXPECT_EQ(0, f[i].ret) TH_LOG("filler %u unregister", i);
	}
	pthread_attr_destroy(&attr);
	free(tids);
	free(f);
}

/* ---- close() while an M is parked ---------------------------------------- */

TEST_F(proc, close_under_parked_thread)
{
	struct iso_parker ip;
	pthread_barrier_t registered;
	pthread_t th;
	long before = goro_module_refcnt_settled();

	pthread_barrier_init(&registered, NULL, 2);
	ip = (struct iso_parker){ .fd = self->fd, .ret = 1,
				  .deadline = goro_now_ns() +
					      300 * NSEC_PER_MSEC,
				  .registered = &registered };
	ASSERT_EQ(0, pthread_create(&th, NULL, iso_parker_fn, &ip));
	pthread_barrier_wait(&registered);
	ASSERT_EQ(0, ip.reg_ret);
	ASSERT_TRUE(goro_wait_in_ioctl(getpid(), ip.tid, 10000));

	/* the park holds the file; the instance lives until it returns */
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	pthread_join(th, NULL);
	EXPECT_EQ(-ETIMEDOUT, ip.ret);
	if (before >= 0)
		EXPECT_EQ(before - 1, goro_module_refcnt());
}

TEST_HARNESS_MAIN
