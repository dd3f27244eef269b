/* SPDX-License-Identifier: GPL-2.0 */
/*
 * goro.ko internal header: the instance and M objects shared by main.c
 * (device, lifetime, dispatch, mmap), park.c (M park/unpark/switch) and
 * note.c (one-shot notes).  Nothing here is ABI; uapi/linux/goro.h is.
 */
#ifndef _GORO_KMOD_GORO_H
#define _GORO_KMOD_GORO_H

#include <linux/atomic.h>
#include <linux/hrtimer.h>
#include <linux/irq_work.h>
#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/preempt.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include <linux/goro.h>

#define GORO_MAX_SLOTS		1024
#define GORO_SHM_SIZE		round_up(GORO_MAX_SLOTS * \
					 sizeof(struct goro_mslot), PAGE_SIZE)

/*
 * Objects, lifetimes, references
 * ------------------------------
 *
 * struct goro_inst: one per open() of /dev/goro.  Created by open(),
 * bound to the opening thread group (a reference on its struct pid is
 * held for the instance's life).  Its kref starts at one, owned by the
 * struct file; release() drops it.  Every ioctl runs with the file
 * reference held by the syscall layer, so no handler (and no sleeper in
 * M_PARK or NOTE_SLEEP) can outlive the instance, and release() never
 * races with a handler.  The mmap of the slot area holds the file too,
 * so the area outlives every mapping.
 *
 * struct goro_m: one per registered thread (an M).  Owned by the
 * instance through two indexes: ms[slot] (RCU-published, for unparkers
 * of any thread) and mtab (xarray keyed by the global tid, for the
 * caller's own M).  Holds a reference on its task_struct.  Removed by
 * M_UNREGISTER from its own thread, by M_REGISTER/-ENOSPC reaping when
 * its thread has exited, or by release().  Freed after an RCU grace
 * period (goro_m_free()), because M_UNPARK/M_SWITCH reach a target M
 * under rcu_read_lock() only, without a reference; the task reference
 * is dropped in the same RCU callback so that wake-ups from such
 * readers never touch a freed task.  The module's exit waits for those
 * callbacks with rcu_barrier().
 *
 * The caller's own M needs no reference either: only its own thread
 * (unregister), reaping (which only takes Ms whose thread has exited)
 * and release() (no ioctl running) remove it.
 *
 * struct goro_pn: the preempt notifier of one M (sysmon.c), registered
 * on the M's own thread at M_REGISTER.  A separate object because it
 * outlives its M: it can only be unregistered by its own thread (or be
 * dropped once that thread is fully dead), so it lives until then.  It
 * holds a reference on the task and one on the module (the static key
 * of preempt notifiers is held by the module itself).  pn->m (RCU)
 * points back to the M
 * and is cleared when the M is removed; the instance is freed only
 * after a grace period that follows, so a notifier that saw pn->m
 * non-NULL under rcu_read_lock() may use m->inst.  Freed after an RCU
 * grace period too, because the sysmon reaches it through m->pn.
 *
 * struct goro_np: the NETPOLL binding (netpoll.c), at most one per
 * instance (inst->np, under np_lock).  Holds a reference on the bound
 * file and a wait entry on its queue; freed by unbind, a later bind
 * never replaces it, and release() unbinds.  A parker with
 * GORO_PARK_NETPOLL holds its own file reference for its park (struct
 * goro_np_waiter, on its stack), so an unbind never waits for parkers.
 *
 * struct goro_knote: one per note address that has state (a sleeper or
 * the woken flag).  Owned by inst->notes; freed by the last sleeper to
 * leave an unwoken note, by NOTE_CLEAR of a note with no sleeper, or by
 * release().  A sleeper keeps it alive by being counted in nsleepers.
 */

/*
 * Lock order (outer first)
 * ------------------------
 *
 *   inst->m_lock (mutex)       registration: ms[] and mtab updates
 *   inst->note_lock (mutex)    the note table and every note's state
 *     xa_lock of mtab / notes  taken inside xa_*() calls only
 *   m->wq.lock, note->wq.lock  taken inside wake_up*() / prepare_to_wait()
 *     scheduler locks          inside wake-ups
 *
 *   sysmon.cfg_lock (mutex)    SYSMON_CONFIG
 *     sysmon.lock (spin, irq)  enabled, delay, hrtimer_start()
 *       hrtimer base lock      inside hrtimer_start()
 *
 * m_lock may be held around goro_pn_detach(), which takes no sysmon
 * lock.  The preempt notifiers run under the rq lock (sched_out) or
 * with preemption off (sched_in) and take no lock of the instance.
 *
 *   inst->np_lock (mutex)      the NETPOLL binding; vfs_poll() under it
 *     the bound file's locks   inside vfs_poll(); its queue lock:
 *       inst->np_wq.lock       taken by the wake function, under it
 *         scheduler locks
 *
 * m_lock and note_lock are never held together; np_lock is taken with
 * neither.  The M_PARK,
 * M_UNPARK and M_SWITCH paths take no lock of the instance: the token
 * is an atomic and the target M is found under RCU.
 */

struct goro_pn;

struct goro_m {
	/* immutable while registered */
	struct goro_inst *inst;
	struct task_struct *task;	/* reference held */
	struct goro_pn *pn;		/* outlives the M, see above */
	pid_t gtid;			/* global tid, the mtab key */
	u32 slot;

	/* true while the M's own thread waits in M_PARK/M_SWITCH */
	bool parked;

	/*
	 * Written only by the sysmon timer (one callback at a time): the
	 * (curg, since) pair it last saw RUNNING, when the pair's next
	 * preemption signal is due (pre_sent: not before the M has taken
	 * the last one), and the counters it publishes.
	 */
	bool pre_valid;
	bool pre_sent;
	u64 pre_curg;
	u64 pre_since;
	u64 pre_start;
	u64 pre_next;
	u32 npreempts;
	u32 nhandoffs;

	/* lock-free: the unpark token, a semaphore of one */
	atomic_t token;
	/* parked thread waits here; its lock orders token vs. sleep */
	wait_queue_head_t wq;

	/* written only by the M's own thread */
	u64 nparks;
	/* any thread of the instance */
	atomic64_t nwakes;

	struct rcu_head rcu;
};

struct goro_knote {
	u64 addr;
	wait_queue_head_t wq;

	/*
	 * protected by inst->note_lock; woken and wakeseq are also read
	 * locklessly by sleepers re-checking after a wake-up
	 */
	bool woken;
	u64 wakeseq;			/* WAKEUPs so far */
	unsigned int nsleepers;
};

/*
 * The instance's sysmon (sysmon.c).  lock (irq-safe: taken from the
 * timer's softirq and the kick's hard irq) orders every hrtimer_start()
 * with enabled, so that no start follows a stop.  The config values are
 * written under lock and cfg_lock, read locklessly by the timer.
 */
struct goro_sysmon {
	struct mutex cfg_lock;		/* SYSMON_CONFIG callers */
	spinlock_t lock;
	bool enabled;
	u64 slice_ns;
	u64 blocked_ns;
	u32 signo;
	u64 delay_ns;			/* current poll period */
	unsigned int idle;		/* polls in a row with nothing to watch */
	struct hrtimer timer;		/* HRTIMER_MODE_*_SOFT: softirq */
	struct irq_work kick;		/* from sched_out, under the rq lock */
};

struct goro_np;

/*
 * An M parked in M_PARK with GORO_PARK_NETPOLL (netpoll.c): its entry on
 * inst->np_wq, the bound file (reference held for the park) and the
 * binding generation it saw.  On the parker's stack.
 */
struct goro_np_waiter {
	wait_queue_entry_t wait;
	struct file *file;
	u32 gen;
	atomic_t woken;			/* a wake-up since the last look */
};

struct goro_inst {
	struct kref ref;
	struct pid *owner;		/* thread group; reference held */
	struct goro_mslot *shm;		/* vmalloc_user, GORO_SHM_SIZE */

	/* protected by m_lock (readers: RCU for ms[], xa_load for mtab) */
	struct mutex m_lock;
	struct xarray mtab;		/* global tid -> struct goro_m */
	unsigned int nr_m;
	struct goro_m __rcu *ms[GORO_MAX_SLOTS];

	/* protected by note_lock */
	struct mutex note_lock;
	struct xarray notes;		/* addr >> 3 -> struct goro_knote */
	unsigned int nr_notes;

	/* protected by np_lock: the NETPOLL binding (netpoll.c) */
	struct mutex np_lock;
	struct goro_np *np;
	u32 np_gen;			/* bumped by unbind; read by parkers */
	/* parkers that asked for I/O; woken from the file's wake-up */
	wait_queue_head_t np_wq;
	atomic_t np_parkers;
	atomic64_t np_wakes;		/* wake-ups of the bound file */
	atomic64_t np_ioparks;		/* parks that returned GORO_PARK_IO */

	struct goro_sysmon sysmon;
	/* an M was ever registered: free only after an RCU grace period */
	bool had_m;
	struct dentry *dbg;		/* debugfs goro/<tgid>-<id>: stats */
};

/* park.c */
int goro_m_register(struct goro_inst *inst, void __user *argp);
int goro_m_unregister(struct goro_inst *inst, void __user *argp);
int goro_m_park(struct goro_inst *inst, void __user *argp);
int goro_m_unpark(struct goro_inst *inst, void __user *argp);
int goro_m_switch(struct goro_inst *inst, void __user *argp);
void goro_m_release_all(struct goro_inst *inst);
int goro_m_wake(struct goro_inst *inst, u32 slot);
bool goro_m_exited(const struct goro_m *m);

/* sysmon.c */
int goro_sysmon_config(struct goro_inst *inst, void __user *argp);
void goro_sysmon_init(struct goro_inst *inst);
void goro_sysmon_stop(struct goro_inst *inst);
void goro_sysmon_destroy(struct goro_inst *inst);
void goro_sysmon_m_running(struct goro_inst *inst);
struct goro_pn *goro_pn_create(void);
void goro_pn_attach(struct goro_pn *pn, struct goro_m *m);
void goro_pn_destroy(struct goro_pn *pn);
void goro_pn_detach(struct goro_pn *pn);
void goro_sysmon_module_init(void);
void goro_sysmon_module_exit(void);

/* netpoll.c */
int goro_netpoll(struct goro_inst *inst, void __user *argp);
void goro_netpoll_release(struct goro_inst *inst);
int goro_netpoll_fd(struct goro_inst *inst);
int goro_np_wait_begin(struct goro_inst *inst, struct goro_np_waiter *nw);
int goro_np_wait_check(struct goro_inst *inst, struct goro_np_waiter *nw);
void goro_np_wait_end(struct goro_inst *inst, struct goro_np_waiter *nw,
		      int ret);

/* note.c */
int goro_note_sleep(struct goro_inst *inst, void __user *argp);
int goro_note_wakeup(struct goro_inst *inst, void __user *argp);
int goro_note_clear(struct goro_inst *inst, void __user *argp);
void goro_note_release_all(struct goro_inst *inst);

/*
 * park.c, shared with note.c: called in TASK_INTERRUPTIBLE after
 * prepare_to_wait(), sleeps until a wake-up, a signal or the absolute
 * CLOCK_MONOTONIC deadline.  Returns false, without sleeping, when the
 * deadline has already passed; true after any sleep (the caller then
 * re-checks its condition and calls again).
 */
bool goro_sleep_until(u64 deadline_ns);

/* Reserved input words must be zero so that they can become fields. */
static inline bool goro_all_zero(const __u64 *v, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (v[i])
			return false;
	return true;
}

static inline pid_t goro_inst_tgid(const struct goro_inst *inst)
{
	return pid_nr(inst->owner);
}

#endif /* _GORO_KMOD_GORO_H */
