// SPDX-License-Identifier: MIT
/*
 * park.c - how threads wait: runtime locks, notes, and M parking.
 *
 * Runtime locks are Go's lock_futex: key 0 unlocked, 1 locked, 2 locked
 * with possible sleepers.  A locker spins briefly (critical sections are
 * a few dozen instructions), yields once, then sleeps in FUTEX_WAIT on
 * key == 2; unlock wakes one sleeper only when it sees 2.  They may be
 * taken on g0 and in goroutines; they never park a goroutine.
 *
 * Notes are one-shot events (Go's note): key 0 unwoken, 1 woken; a
 * second notewakeup before noteclear throws.
 *
 * M parking is a token, a semaphore of one per M: mpark_wake() gives it,
 * mpark_sleep() takes it or sleeps until it comes or a deadline passes.
 * A wake-up that comes first is never lost, and a stale token only costs
 * the sleeper one extra round of its loop: every caller sleeps in a loop
 * that re-checks the condition it waits for (Go's stopm re-checks
 * m.nextp the same way).  With /dev/goro open and GORODEBUG kmod!=0,
 * the token is the kernel's (GORO_IOC_M_PARK/M_UNPARK): the kernel then
 * sees which M sleeps and which runs, and each M publishes what it runs
 * in its shared slot (mslot_update) for the kernel sysmon.  Without the
 * module the token is a futex word in struct m.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/goro.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

bool kmod_active;
bool kmod_sysmon;
static uint64_t goro_features;
static struct m **slotm;	/* M of each registered slot */
static int goro_fd = -1;
static void *goro_shm;
static uint32_t goro_slot_size;
static uint32_t goro_max_slots;

static long futex(uint32_t *addr, int op, uint32_t val,
		  const struct timespec *ts, uint32_t val3)
{
	return syscall(SYS_futex, addr, op | FUTEX_PRIVATE_FLAG, val, ts,
		       NULL, val3);
}

/* Sleep while *addr == val, until the absolute deadline (-1: none).
 * Returns 0, or -ETIMEDOUT; spurious returns are the caller's loop's. */
static int futexsleep(uint32_t *addr, uint32_t val, int64_t deadline)
{
	struct timespec ts, *tsp = NULL;

	if (deadline >= 0) {
		ts.tv_sec = deadline / 1000000000;
		ts.tv_nsec = deadline % 1000000000;
		tsp = &ts;
	}
	if (futex(addr, FUTEX_WAIT_BITSET, val, tsp,
		  FUTEX_BITSET_MATCH_ANY) < 0 && errno == ETIMEDOUT)
		return -ETIMEDOUT;
	return 0;
}

static void futexwakeup(uint32_t *addr, uint32_t cnt)
{
	futex(addr, FUTEX_WAKE, cnt, NULL, 0);
}

/* lock() found the lock held (v: what its exchange read): spin, then
 * sleep on the futex.  The count in m->locks is already taken. */
void lock_slow(struct rtlock *l, uint32_t v)
{
	uint32_t wait;

	/* Keep "sleeping" if we replaced it: someone else must be woken. */
	wait = v;
	for (;;) {
		for (int i = 0; i < 4; i++) {
			while (__atomic_load_n(&l->key, __ATOMIC_RELAXED) ==
			       LOCK_UNLOCKED) {
				uint32_t old = LOCK_UNLOCKED;

				if (__atomic_compare_exchange_n(&l->key, &old,
						wait, false, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
					return;
			}
			for (int j = 0; j < 30; j++)
				arch_pause();
		}
		sched_yield();
		v = __atomic_exchange_n(&l->key, LOCK_SLEEPING,
					__ATOMIC_ACQUIRE);
		if (v == LOCK_UNLOCKED)
			return;
		wait = LOCK_SLEEPING;
		futexsleep(&l->key, LOCK_SLEEPING, -1);
	}
}

/* unlock() found sleepers (v LOCK_SLEEPING), or misuse. */
void unlock_slow(struct rtlock *l, uint32_t v)
{
	if (v == LOCK_UNLOCKED)
		throw("unlock of unlocked lock");
	futexwakeup(&l->key, 1);
}

void noteclear(struct note *n)
{
	__atomic_store_n(&n->key, 0, __ATOMIC_RELAXED);
}

void notewakeup(struct note *n)
{
	if (__atomic_exchange_n(&n->key, 1, __ATOMIC_RELEASE) != 0)
		throw("notewakeup - double wakeup");
	futexwakeup(&n->key, 1u << 30);
}

void notesleep(struct note *n)
{
	while (__atomic_load_n(&n->key, __ATOMIC_ACQUIRE) == 0)
		futexsleep(&n->key, 0, -1);
}

bool notetsleep(struct note *n, int64_t deadline)
{
	while (__atomic_load_n(&n->key, __ATOMIC_ACQUIRE) == 0) {
		if (futexsleep(&n->key, 0, deadline) == -ETIMEDOUT)
			return __atomic_load_n(&n->key, __ATOMIC_ACQUIRE) != 0;
	}
	return true;
}

/* Open /dev/goro once per process, if present and allowed. */
void mpark_init(void)
{
	struct goro_info info = { 0 };
	const uint64_t need = GORO_FEAT_PARK | GORO_FEAT_SHM;
	void *shm;
	int fd;

	if (!debug.kmod)
		return;
	fd = open("/dev/goro", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	if (ioctl(fd, GORO_IOC_INFO, &info) < 0 ||
	    info.abi_version != GORO_ABI_VERSION ||
	    (info.features & need) != need ||
	    info.slot_size < sizeof(struct goro_mslot))
		goto out_close;
	shm = mmap(NULL, info.shm_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   fd, 0);
	if (shm == MAP_FAILED)
		goto out_close;
	slotm = calloc(info.max_slots, sizeof(*slotm));
	if (!slotm) {
		munmap(shm, info.shm_size);
		goto out_close;
	}
	goro_features = info.features;
	goro_fd = fd;
	goro_shm = shm;
	goro_slot_size = info.slot_size;
	goro_max_slots = info.max_slots;
	kmod_active = true;
	return;

out_close:
	close(fd);
}

/*
 * Make the calling thread (mp's) an M of the instance.  An M that gets
 * no slot (all taken) parks on its futex token instead: the two kinds of
 * M coexist, since each M's token is woken the way it sleeps.
 */
void mpark_register(struct m *mp)
{
	struct goro_m_register reg = { 0 };

	mp->slot = -1;
	mp->mslot = NULL;
	if (!kmod_active)
		return;
	if (ioctl(goro_fd, GORO_IOC_M_REGISTER, &reg) < 0 ||
	    reg.slot >= goro_max_slots)
		return;
	mp->slot = (int)reg.slot;
	mp->mslot = (struct goro_mslot *)((char *)goro_shm +
					  (size_t)reg.slot * goro_slot_size);
	__atomic_store_n(&slotm[reg.slot], mp, __ATOMIC_RELEASE);
	mslot_update(mp, GORO_MSTATUS_SCHED);
}

/* The M registered in slot, NULL if none. */
struct m *mslot_m(uint32_t slot)
{
	if (!slotm || slot >= goro_max_slots)
		return NULL;
	return __atomic_load_n(&slotm[slot], __ATOMIC_ACQUIRE);
}

/*
 * The user registers goro.ko saved in mp's slot when mp last blocked
 * holding a P (GORO_FEAT_BLOCKREGS), for the collector: while mp's P is
 * handed off they are its goroutine's registers.  NULL without them.
 */
const uint64_t *mslot_blockregs(struct m *mp, size_t *n)
{
	if (!mp->mslot || !(goro_features & GORO_FEAT_BLOCKREGS))
		return NULL;
	*n = sizeof(mp->mslot->regs) / sizeof(mp->mslot->regs[0]);
	return (const uint64_t *)mp->mslot->regs;
}

/*
 * Hand preemption and hand-off to goro.ko's sysmon when it has one,
 * unless GORODEBUG=kmodsysmon=0 (then the userland sysmon runs): it
 * signals Ms that overrun a slice and wakes an idle M with `retake` set
 * when an M blocks in the kernel (proc.c: mretake, handoff_lost).
 */
void kmod_sysmon_enable(void)
{
	struct goro_sysmon_config cfg = { 0 };

	/* without BLOCKREGS the collector could not see the registers of
	 * a goroutine whose P the kernel handed off */
	if (!kmod_active || !debug.kmodsysmon ||
	    !(goro_features & GORO_FEAT_SYSMON) ||
	    !(goro_features & GORO_FEAT_BLOCKREGS))
		return;
	cfg.signo = (uint32_t)preempt_signo;
	cfg.slice_ns = (uint64_t)debug.timeslice * 1000;
	cfg.flags = GORO_SYSMON_ENABLE;
	if (ioctl(goro_fd, GORO_IOC_SYSMON_CONFIG, &cfg) < 0)
		return;
	kmod_sysmon = true;
}

void mpark_sleep(struct m *mp, int64_t deadline)
{
	struct goro_m_park park = { 0 };

	if (mp->slot < 0) {
		if (__atomic_exchange_n(&mp->park.key, 0, __ATOMIC_ACQUIRE))
			return;
		futexsleep(&mp->park.key, 0, deadline);
		__atomic_exchange_n(&mp->park.key, 0, __ATOMIC_ACQUIRE);
		return;
	}
	mslot_update(mp, GORO_MSTATUS_IDLE);
	park.deadline_ns = deadline < 0 ? GORO_NO_DEADLINE : (uint64_t)deadline;
	while (ioctl(goro_fd, GORO_IOC_M_PARK, &park) < 0 && errno == EINTR)
		;
	/* The token's consumer reads what its giver wrote before; TSan
	 * cannot see the kernel's token, so the flag carries the ordering. */
	__atomic_exchange_n(&mp->unpark_pending, 0, __ATOMIC_ACQ_REL);
}

/*
 * goro.ko NETPOLL (Documentation/design.rst, "Netpoller"): the poller's
 * fd (the io_uring ring fd, or the epoll fd) is bound to the instance
 * once, at netpoll init; the M that sleeps for timers and I/O
 * (sched.pollm) then parks in M_PARK with GORO_PARK_NETPOLL instead of
 * blocking in the poller, so that every idle M sleeps in the kernel the
 * same way and is woken the same way (M_UNPARK, not a poller break).
 */
bool kmod_netpoll;
uint64_t kmod_netpoll_ioparks;

int kmod_netpoll_bind(int fd)
{
	struct goro_netpoll np = { .fd = fd };

	if (!kmod_active || !debug.kmodnetpoll ||
	    !(goro_features & GORO_FEAT_NETPOLL))
		return -ENOSYS;
	if (ioctl(goro_fd, GORO_IOC_NETPOLL, &np) < 0)
		return -errno;
	__atomic_store_n(&kmod_netpoll, true, __ATOMIC_RELEASE);
	return 0;
}

/* mp can wait for I/O in M_PARK: the fd is bound and mp has a slot. */
bool mpark_can_netpoll(struct m *mp)
{
	return mp->slot >= 0 && __atomic_load_n(&kmod_netpoll,
						 __ATOMIC_ACQUIRE);
}

bool mpark_sleep_netpoll(struct m *mp, int64_t deadline)
{
	struct goro_m_park park = { .flags = GORO_PARK_NETPOLL };
	int ret;

	mslot_update(mp, GORO_MSTATUS_IDLE);
	park.deadline_ns = deadline < 0 ? GORO_NO_DEADLINE : (uint64_t)deadline;
	while ((ret = ioctl(goro_fd, GORO_IOC_M_PARK, &park)) < 0 &&
	       errno == EINTR)
		;
	if (ret < 0 && errno != ETIMEDOUT)
		throw("goro: M_PARK (netpoll) failed");
	if (ret == GORO_PARK_IO) {
		__atomic_add_fetch(&kmod_netpoll_ioparks, 1, __ATOMIC_RELAXED);
		return true;
	}
	/* as mpark_sleep: the token's giver wrote before it gave */
	__atomic_exchange_n(&mp->unpark_pending, 0, __ATOMIC_ACQ_REL);
	return false;
}

void mpark_wake(struct m *mp)
{
	struct goro_m_unpark unpark = { 0 };

	if (mp->slot < 0) {
		if (__atomic_exchange_n(&mp->park.key, 1, __ATOMIC_RELEASE) == 0)
			futexwakeup(&mp->park.key, 1);
		return;
	}
	__atomic_store_n(&mp->unpark_pending, 1, __ATOMIC_RELEASE);
	unpark.slot = (uint32_t)mp->slot;
	if (ioctl(goro_fd, GORO_IOC_M_UNPARK, &unpark) < 0)
		throw("goro: M_UNPARK failed");
}

/* Publish what mp runs now in its shared slot (kmod only). */
void mslot_update(struct m *mp, int status)
{
	struct goro_mslot *s = mp->mslot;
	struct g *gp = mp->curg;

	if (!s)
		return;
	__atomic_store_n(&s->curg, status == GORO_MSTATUS_RUNNING && gp ?
			 gp->goid : 0, __ATOMIC_RELAXED);
	if (status == GORO_MSTATUS_RUNNING)
		__atomic_store_n(&s->since_ns, (uint64_t)nanotime(),
				 __ATOMIC_RELAXED);
	__atomic_store_n(&s->p, mp->p ? (uint32_t)mp->p->id + 1 : 0,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&s->status, (uint32_t)status, __ATOMIC_RELEASE);
}
