// SPDX-License-Identifier: GPL-2.0
/*
 * goro.ko: the kernel sysmon (GORO_IOC_SYSMON_CONFIG): preemption by
 * signal and hand-off of the P of an M that blocked in the kernel.
 *
 * The model is Go's sysmon (runtime/proc.go): a monitor that wakes every
 * 20 us while there is something to watch, backs off by doubling up to
 * 10 ms after 50 idle rounds, and retakes Ps from Ms that run one G too
 * long (preemptone, a signal) or sit in a syscall (handoffp).  Here it is
 * an hrtimer per instance, run in softirq context (HRTIMER_MODE_*_SOFT)
 * so that send_sig_info() and wake-ups are allowed there, and the
 * kernel can see what Go's sysmon has to guess: the scheduler tells it,
 * through a preempt notifier on every M, the moment an M blocks.
 *
 * Preemption.  A slot whose status is RUNNING with the same (curg,
 * since_ns) pair for longer than slice_ns gets signo, sent to that
 * thread only (send_sig_info(), thread-directed, si_code SI_KERNEL),
 * then again a slice after the thread took it while the pair stays.
 * The pair is a hint: the kernel keeps its own copy (pre_* in struct
 * goro_m) of what it saw and when it signalled, so a slot rewritten by
 * user space can cause at most one signal per slice to its own thread.
 * An M that sleeps in the kernel is never signalled: that would
 * interrupt its syscall.
 *
 * Hand-off, the state machine of one M (kstate is the kernel's copy,
 * slot->handoff the shared one, both GORO_HANDOFF_*):
 *
 *   NONE --sched_out, blocking, slot RUNNING with p != 0--> BLOCKED
 *   BLOCKED --sched_in--> NONE, or as LOST below if the slot says LOST
 *   BLOCKED --sysmon: blocked > blocked_ns, an idle parked M--> LOST
 *   LOST --sched_in--> NONE, and a task_work sends signo on the way
 *          back to user space; user space clears slot->handoff itself
 *
 * 1. sched_out runs under the rq lock: it may not wake anyone, allocate
 *    or send a signal.  It only moves the states with cmpxchg, stamps
 *    the time and queues an irq_work (safe there), whose handler pulls
 *    the sysmon's next poll in to blocked_ns from now.
 * 2. The sysmon claims an idle M (status IDLE, parked in M_PARK or
 *    M_SWITCH, retake 0) by cmpxchg of its retake 0 -> victim + 1, then
 *    moves the victim BLOCKED -> LOST by cmpxchg; if that fails the
 *    victim woke first and the claim is undone.  Then it unparks the
 *    idle M as M_UNPARK does.
 * 3. sched_in runs in the M itself after the rq lock is dropped.  A
 *    LOST found there must reach user space before any user instruction
 *    runs, but the syscall the M blocked in must complete normally (a
 *    signal now would make nanosleep or read return EINTR).  So the
 *    signal is sent from a task_work (TWA_RESUME): it runs after the
 *    syscall returned, on the way out, and the signal it raises is then
 *    delivered before the return to user space.
 * 4. Step 2's two cmpxchg are not one atomic step: the victim can wake
 *    between them (it sees LOST, settles, the slot goes back to NONE)
 *    and block again (slot BLOCKED) before the sysmon's second cmpxchg
 *    lands and makes the slot LOST for this new block, with the kernel's
 *    copy BLOCKED.  The idle M acts on the slot, so sched_in treats a
 *    slot it finds LOST as LOST, whatever its copy said.  (Without that
 *    the M returned to user space without its P: syscall_test's
 *    short_syscalls failed "goready: no P" about one run in 150.)
 *
 * Lifetime.  A preempt notifier can only be unregistered by its own
 * thread (the list is walked by that thread's context switches, without
 * a lock), so struct goro_pn is its own object.  When its M is removed
 * it is unregistered at once if the caller is that thread, else by a
 * task_work on that thread (next return to user space or do_exit()); if
 * the thread is already past exit_task_work(), a delayed work waits
 * until it is TASK_DEAD and off its CPU (its last sched_out has run)
 * and frees it without unregistering.  A notifier called after its M
 * was removed touches nothing but the goro_pn itself.
 *
 * Alternatives rejected: a kernel thread per instance (a task to manage
 * for what a timer does); polling task state from the timer instead of
 * notifiers (the block would be seen only at the next poll, and reading
 * another task's state says nothing about which syscall it is in);
 * signalling from sched_in directly (the syscall would return EINTR).
 */

#include <linux/hrtimer.h>
#include <linux/irq_work.h>
#include <linux/module.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/sched/task_stack.h>
#include <linux/slab.h>
#include <linux/task_work.h>
#include <linux/uaccess.h>

#include "goro.h"
#include "trace.h"

/* Go's sysmon: 20 us while busy, doubling after 50 idle rounds, 10 ms at most. */
#define GORO_SYSMON_DELAY_MIN	(20 * NSEC_PER_USEC)
#define GORO_SYSMON_DELAY_MAX	(10 * NSEC_PER_MSEC)
#define GORO_SYSMON_IDLE_ROUNDS	50

/*
 * The defaults a SYSMON_CONFIG field of 0 takes, tunable by the admin in
 * /sys/module/goro/parameters; each write is checked against the same
 * range the ioctl enforces, so a default is always a valid value.
 */
static int goro_param_set_u64_range(const char *val,
				    const struct kernel_param *kp,
				    u64 min, u64 max)
{
	u64 v;
	int ret = kstrtou64(val, 0, &v);

	if (ret)
		return ret;
	if (v < min || v > max)
		return -EINVAL;
	WRITE_ONCE(*(u64 *)kp->arg, v);
	return 0;
}

static int goro_param_set_slice(const char *val, const struct kernel_param *kp)
{
	return goro_param_set_u64_range(val, kp, GORO_SYSMON_SLICE_MIN,
					GORO_SYSMON_SLICE_MAX);
}

static int goro_param_set_blocked(const char *val,
				  const struct kernel_param *kp)
{
	return goro_param_set_u64_range(val, kp, GORO_SYSMON_BLOCKED_MIN,
					GORO_SYSMON_BLOCKED_MAX);
}

static int goro_param_set_signo(const char *val, const struct kernel_param *kp)
{
	unsigned int v;
	int ret = kstrtouint(val, 0, &v);

	if (ret)
		return ret;
	if (!v || v > SIGRTMAX || v == SIGKILL || v == SIGSTOP)
		return -EINVAL;
	WRITE_ONCE(*(unsigned int *)kp->arg, v);
	return 0;
}

static const struct kernel_param_ops goro_slice_ops = {
	.set = goro_param_set_slice,
	.get = param_get_ullong,
};
static const struct kernel_param_ops goro_blocked_ops = {
	.set = goro_param_set_blocked,
	.get = param_get_ullong,
};
static const struct kernel_param_ops goro_signo_ops = {
	.set = goro_param_set_signo,
	.get = param_get_uint,
};

static u64 sysmon_slice_ns = GORO_SYSMON_SLICE_DEFAULT;
module_param_cb(sysmon_slice_ns, &goro_slice_ops, &sysmon_slice_ns, 0644);
MODULE_PARM_DESC(sysmon_slice_ns, "default time slice of SYSMON_CONFIG (ns)");
static u64 sysmon_blocked_ns = GORO_SYSMON_BLOCKED_DEFAULT;
module_param_cb(sysmon_blocked_ns, &goro_blocked_ops, &sysmon_blocked_ns, 0644);
MODULE_PARM_DESC(sysmon_blocked_ns,
		 "default blocked threshold of SYSMON_CONFIG (ns)");
static unsigned int sysmon_signo = SIGURG;
module_param_cb(sysmon_signo, &goro_signo_ops, &sysmon_signo, 0644);
MODULE_PARM_DESC(sysmon_signo, "default preemption signal of SYSMON_CONFIG");

/* How often the reaper looks whether a dead M's thread is gone. */
#define GORO_PN_REAP_DELAY	msecs_to_jiffies(10)

/* struct goro_pn flag bits, touched only by the pn's own thread */
enum {
	GORO_PN_SIGQ,		/* sig_work is queued on the thread */
	GORO_PN_FREE_BY_SIG,	/* unregistered: sig_work frees the pn */
};

struct goro_pn {
	struct preempt_notifier pn;
	struct task_struct *task;	/* reference held */
	struct goro_m __rcu *m;		/* NULL once the M is removed */
	u64 exec_id;			/* task's self_exec_id at register */

	atomic_t kstate;		/* GORO_HANDOFF_*, the kernel's copy */
	u64 blocked_since;		/* ns, valid while kstate != NONE */
	u32 lost_signo;			/* signal for the LOST task_work */
	unsigned long flags;		/* GORO_PN_* */

	struct callback_head sig_work;
	struct callback_head unreg_work;
	struct delayed_work reap;
	struct rcu_head rcu;
};

/* ---- the sysmon timer ------------------------------------------------- */

/* Arm the timer delay_ns from now, unless it already fires earlier. */
static void goro_sysmon_arm(struct goro_sysmon *sm, u64 delay_ns)
{
	ktime_t when = ktime_add_ns(ktime_get(), delay_ns);

	lockdep_assert_held(&sm->lock);

	if (hrtimer_is_queued(&sm->timer) &&
	    hrtimer_get_expires(&sm->timer) <= when)
		return;
	hrtimer_start(&sm->timer, when, HRTIMER_MODE_ABS_SOFT);
}

/* Back to polling every 20 us, next poll at most delay_ns from now. */
static void goro_sysmon_wake(struct goro_sysmon *sm, u64 delay_ns)
{
	unsigned long flags;

	spin_lock_irqsave(&sm->lock, flags);
	if (sm->enabled) {
		sm->idle = 0;
		sm->delay_ns = GORO_SYSMON_DELAY_MIN;
		goro_sysmon_arm(sm, delay_ns);
	}
	spin_unlock_irqrestore(&sm->lock, flags);
}

/* The kick queued by sched_out: look again when the block has lasted. */
static void goro_sysmon_kick_fn(struct irq_work *work)
{
	struct goro_sysmon *sm = container_of(work, struct goro_sysmon, kick);

	goro_sysmon_wake(sm, READ_ONCE(sm->blocked_ns));
}

/* An M left M_PARK/M_SWITCH: it is about to run, watch closely again. */
void goro_sysmon_m_running(struct goro_inst *inst)
{
	struct goro_sysmon *sm = &inst->sysmon;

	if (READ_ONCE(sm->enabled) &&
	    READ_ONCE(sm->delay_ns) > GORO_SYSMON_DELAY_MIN)
		goro_sysmon_wake(sm, GORO_SYSMON_DELAY_MIN);
}

static void goro_signal_thread(struct task_struct *task, u32 signo)
{
	struct kernel_siginfo info;

	clear_siginfo(&info);
	info.si_signo = signo;
	info.si_errno = 0;
	info.si_code = SI_KERNEL;
	/* thread-directed (PIDTYPE_PID): only this thread sees it */
	send_sig_info(signo, &info, task);
}

/* An M is signalled only while it runs user code of the same image. */
static bool goro_m_signallable(const struct goro_m *m)
{
	struct task_struct *task = m->task;

	return READ_ONCE(task->__state) == TASK_RUNNING &&
	       !(READ_ONCE(task->flags) & PF_EXITING) &&
	       READ_ONCE(task->self_exec_id) == m->pn->exec_id;
}

/*
 * Not now if the signal is still pending (standard signals do not
 * queue: this one would be swallowed) or blocked (the M runs the last
 * one's handler, which blocks it: one sent now would be delivered the
 * moment the handler returns, into whatever it set up).  Read without
 * siglock, a hint that at worst delays a signal by one poll.
 */
static bool goro_signal_busy(struct task_struct *task, u32 signo)
{
	return sigismember(&task->pending.signal, signo) ||
	       sigismember(&task->signal->shared_pending.signal, signo) ||
	       sigismember(&task->blocked, signo);
}

/*
 * Signal m when its slot has said RUNNING the same pair for a slice.
 * *next gets the time this M next needs a look.
 */
static void goro_sysmon_preempt(struct goro_inst *inst, struct goro_m *m,
				u64 now, u64 slice_ns, u32 signo, u64 *next)
{
	struct goro_mslot *ms = &inst->shm[m->slot];
	u64 curg = READ_ONCE(ms->curg);
	u64 since = READ_ONCE(ms->since_ns);

	if (!m->pre_valid || curg != m->pre_curg || since != m->pre_since) {
		m->pre_valid = true;
		m->pre_curg = curg;
		m->pre_since = since;
		/* since is a hint: never later than what the kernel saw */
		m->pre_start = since <= now ? since : now;
		m->pre_next = m->pre_start + slice_ns;
		m->pre_sent = false;
	}
	if (m->pre_sent) {
		if (goro_signal_busy(m->task, signo))
			return;		/* the half-slice poll looks again */
		/*
		 * Taken, and the pair stayed (no safe point): the next one
		 * a slice from now, not from the send.  Under emulation a
		 * delivery can take most of a slice, and signals sent while
		 * one was still being set up arrived as its handler
		 * returned, into the preemption it started: 70% of those
		 * that found no safe point in preempt_stress.
		 */
		m->pre_sent = false;
		m->pre_next = now + slice_ns;
		*next = min(*next, m->pre_next);
		return;
	}
	if (now < m->pre_next || !goro_m_signallable(m) ||
	    goro_signal_busy(m->task, signo)) {
		/* overdue but asleep or not yet signalled: the busy poll */
		if (m->pre_next > now)
			*next = min(*next, m->pre_next);
		return;
	}

	/* pre_next is set again once the M has taken it; until then the
	 * half-slice poll of a busy sysmon looks */
	goro_signal_thread(m->task, signo);
	m->pre_sent = true;
	WRITE_ONCE(ms->npreempts, ++m->npreempts);
	trace_preempt(goro_inst_tgid(inst), m->slot, curg, now - m->pre_start);
}

/* An M that can take over a P: idle, parked in the kernel, no retake. */
static struct goro_m *goro_sysmon_find_idle(struct goro_inst *inst,
					    const struct goro_m *victim)
{
	struct goro_mslot *ms;
	struct goro_m *m;
	unsigned int i;

	for (i = 0; i < GORO_MAX_SLOTS; i++) {
		m = rcu_dereference(inst->ms[i]);
		if (!m || m == victim)
			continue;
		ms = &inst->shm[i];
		if (READ_ONCE(ms->status) != GORO_MSTATUS_IDLE ||
		    READ_ONCE(ms->retake) || !READ_ONCE(m->parked) ||
		    atomic_read(&m->token) || goro_m_exited(m))
			continue;
		return m;
	}
	return NULL;
}

/* Hand off the P of m when it has been blocked past the threshold. */
static void goro_sysmon_handoff(struct goro_inst *inst, struct goro_m *m,
				u64 now, u64 blocked_ns, u32 signo, u64 *next)
{
	struct goro_pn *pn = m->pn;
	struct goro_m *idle;
	u64 since = READ_ONCE(pn->blocked_since);
	u32 token = m->slot + 1;

	if (now < since || now - since < blocked_ns) {
		*next = min(*next, since + blocked_ns);
		return;
	}
	idle = goro_sysmon_find_idle(inst, m);
	if (!idle)
		return;

	if (cmpxchg(&inst->shm[idle->slot].retake, 0, token) != 0)
		return;
	WRITE_ONCE(pn->lost_signo, signo);
	/* full barrier: lost_signo is visible to the sched_in that sees LOST */
	if (atomic_cmpxchg(&pn->kstate, GORO_HANDOFF_BLOCKED,
			   GORO_HANDOFF_LOST) != GORO_HANDOFF_BLOCKED) {
		/* m woke first: it keeps its P */
		cmpxchg(&inst->shm[idle->slot].retake, token, 0);
		return;
	}
	cmpxchg(&inst->shm[m->slot].handoff, GORO_HANDOFF_BLOCKED,
		GORO_HANDOFF_LOST);
	WRITE_ONCE(inst->shm[m->slot].nhandoffs, ++m->nhandoffs);
	goro_m_wake(inst, idle->slot);
	trace_handoff(goro_inst_tgid(inst), m->slot, idle->slot, now - since);
}

/*
 * One round over the Ms; true when some slot is RUNNING.  *next gets
 * the earliest time a RUNNING or BLOCKED M needs a look (U64_MAX: none).
 */
static bool goro_sysmon_scan(struct goro_inst *inst, u64 now, u64 *next)
{
	struct goro_sysmon *sm = &inst->sysmon;
	u64 slice_ns = READ_ONCE(sm->slice_ns);
	u64 blocked_ns = READ_ONCE(sm->blocked_ns);
	u32 signo = READ_ONCE(sm->signo);
	unsigned int i, seen = 0, nr = READ_ONCE(inst->nr_m);
	bool busy = false;
	struct goro_m *m;
	int kstate;

	rcu_read_lock();
	for (i = 0; i < GORO_MAX_SLOTS && seen < nr; i++) {
		m = rcu_dereference(inst->ms[i]);
		if (!m)
			continue;
		seen++;
		if (READ_ONCE(inst->shm[i].status) != GORO_MSTATUS_RUNNING) {
			m->pre_valid = false;
			continue;
		}
		busy = true;
		/* pairs with atomic_set_release() in sched_out */
		kstate = atomic_read_acquire(&m->pn->kstate);
		if (kstate == GORO_HANDOFF_BLOCKED)
			goro_sysmon_handoff(inst, m, now, blocked_ns, signo,
					    next);
		else if (kstate == GORO_HANDOFF_NONE)
			goro_sysmon_preempt(inst, m, now, slice_ns, signo,
					    next);
	}
	rcu_read_unlock();
	return busy;
}

/*
 * The next poll.  Idle (no slot RUNNING): Go's back-off, 20 us doubling
 * to 10 ms.  Busy: at the earliest deadline the scan knows, and at
 * least every half slice (to see new RUNNING pairs), never sooner than
 * 20 us: a fixed 20 us poll costs nothing in Go's user-space sysmon but
 * is a timer interrupt and a softirq every time here.
 */
static u64 goro_sysmon_next_delay(struct goro_sysmon *sm, bool busy,
				  u64 now, u64 next)
{
	u64 delay;

	lockdep_assert_held(&sm->lock);

	if (busy) {
		sm->idle = 0;
		WRITE_ONCE(sm->delay_ns, GORO_SYSMON_DELAY_MIN);
		delay = clamp_t(u64, READ_ONCE(sm->slice_ns) / 2,
				GORO_SYSMON_DELAY_MIN, GORO_SYSMON_DELAY_MAX);
	} else {
		if (++sm->idle > GORO_SYSMON_IDLE_ROUNDS)
			WRITE_ONCE(sm->delay_ns,
				   min_t(u64, sm->delay_ns * 2,
					 GORO_SYSMON_DELAY_MAX));
		delay = sm->delay_ns;
	}
	if (next > now && next - now < delay)
		delay = next - now;
	return max_t(u64, delay, GORO_SYSMON_DELAY_MIN);
}

static enum hrtimer_restart goro_sysmon_tick(struct hrtimer *timer)
{
	struct goro_sysmon *sm = container_of(timer, struct goro_sysmon, timer);
	struct goro_inst *inst = container_of(sm, struct goro_inst, sysmon);
	u64 now = ktime_get_ns(), next = U64_MAX;
	unsigned long flags;
	bool busy;

	busy = goro_sysmon_scan(inst, now, &next);

	spin_lock_irqsave(&sm->lock, flags);
	if (sm->enabled)
		goro_sysmon_arm(sm, goro_sysmon_next_delay(sm, busy, now, next));
	spin_unlock_irqrestore(&sm->lock, flags);
	/* re-armed above, under lock, so that a stop cannot be undone */
	return HRTIMER_NORESTART;
}

/* ---- SYSMON_CONFIG ---------------------------------------------------- */

static int goro_sysmon_check(struct goro_sysmon_config *cfg)
{
	if (cfg->flags & ~GORO_SYSMON_ENABLE ||
	    !goro_all_zero(cfg->reserved, ARRAY_SIZE(cfg->reserved)))
		return -EINVAL;

	if (!cfg->slice_ns)
		cfg->slice_ns = READ_ONCE(sysmon_slice_ns);
	if (cfg->slice_ns < GORO_SYSMON_SLICE_MIN ||
	    cfg->slice_ns > GORO_SYSMON_SLICE_MAX)
		return -EINVAL;

	if (!cfg->blocked_ns)
		cfg->blocked_ns = READ_ONCE(sysmon_blocked_ns);
	if (cfg->blocked_ns < GORO_SYSMON_BLOCKED_MIN ||
	    cfg->blocked_ns > GORO_SYSMON_BLOCKED_MAX)
		return -EINVAL;

	if (!cfg->signo)
		cfg->signo = READ_ONCE(sysmon_signo);
	if (cfg->signo > SIGRTMAX || cfg->signo == SIGKILL ||
	    cfg->signo == SIGSTOP)
		return -EINVAL;
	return 0;
}

int goro_sysmon_config(struct goro_inst *inst, void __user *argp)
{
	struct goro_sysmon *sm = &inst->sysmon;
	struct goro_sysmon_config cfg;
	unsigned long flags;
	bool enable;
	int ret;

	if (copy_from_user(&cfg, argp, sizeof(cfg)))
		return -EFAULT;
	ret = goro_sysmon_check(&cfg);
	if (ret)
		return ret;
	/* write back first: a fault leaves the sysmon as it was */
	if (copy_to_user(argp, &cfg, sizeof(cfg)))
		return -EFAULT;
	enable = cfg.flags & GORO_SYSMON_ENABLE;

	mutex_lock(&sm->cfg_lock);
	spin_lock_irqsave(&sm->lock, flags);
	WRITE_ONCE(sm->slice_ns, cfg.slice_ns);
	WRITE_ONCE(sm->blocked_ns, cfg.blocked_ns);
	WRITE_ONCE(sm->signo, cfg.signo);
	WRITE_ONCE(sm->enabled, enable);
	if (enable) {
		sm->idle = 0;
		WRITE_ONCE(sm->delay_ns, GORO_SYSMON_DELAY_MIN);
		goro_sysmon_arm(sm, GORO_SYSMON_DELAY_MIN);
	}
	spin_unlock_irqrestore(&sm->lock, flags);
	if (!enable)
		hrtimer_cancel(&sm->timer);
	mutex_unlock(&sm->cfg_lock);
	return 0;
}

void goro_sysmon_init(struct goro_inst *inst)
{
	struct goro_sysmon *sm = &inst->sysmon;

	mutex_init(&sm->cfg_lock);
	spin_lock_init(&sm->lock);
	sm->slice_ns = GORO_SYSMON_SLICE_DEFAULT;
	sm->blocked_ns = GORO_SYSMON_BLOCKED_DEFAULT;
	sm->signo = SIGURG;
	sm->delay_ns = GORO_SYSMON_DELAY_MIN;
	hrtimer_init(&sm->timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS_SOFT);
	sm->timer.function = goro_sysmon_tick;
	init_irq_work(&sm->kick, goro_sysmon_kick_fn);
}

/* release(): no new timer start after this; the timer is stopped. */
void goro_sysmon_stop(struct goro_inst *inst)
{
	struct goro_sysmon *sm = &inst->sysmon;
	unsigned long flags;

	spin_lock_irqsave(&sm->lock, flags);
	WRITE_ONCE(sm->enabled, false);
	spin_unlock_irqrestore(&sm->lock, flags);
	irq_work_sync(&sm->kick);
	hrtimer_cancel(&sm->timer);
}

/*
 * release(), after the grace period that follows the removal of every
 * M: no notifier can queue the kick any more, wait for the last one.
 */
void goro_sysmon_destroy(struct goro_inst *inst)
{
	struct goro_sysmon *sm = &inst->sysmon;

	irq_work_sync(&sm->kick);
	hrtimer_cancel(&sm->timer);
	mutex_destroy(&sm->cfg_lock);
}

/* ---- the preempt notifier of an M ------------------------------------- */

static void goro_pn_free_rcu(struct rcu_head *head)
{
	struct goro_pn *pn = container_of(head, struct goro_pn, rcu);

	put_task_struct(pn->task);
	kfree(pn);
	/* last: module exit waits for this callback with rcu_barrier() */
	module_put(THIS_MODULE);
}

/* The pn is off its thread's list (or the thread is gone). */
static void goro_pn_free(struct goro_pn *pn)
{
	call_rcu(&pn->rcu, goro_pn_free_rcu);
}

/* Unregister from the pn's own thread, then free it (or let sig_work). */
static void goro_pn_unregister_self(struct goro_pn *pn)
{
	WARN_ON_ONCE(pn->task != current);

	/* no context switch may walk the list while it changes */
	preempt_disable();
	preempt_notifier_unregister(&pn->pn);
	preempt_enable();

	if (test_bit(GORO_PN_SIGQ, &pn->flags))
		set_bit(GORO_PN_FREE_BY_SIG, &pn->flags);
	else
		goro_pn_free(pn);
}

static void goro_pn_unreg_fn(struct callback_head *cb)
{
	goro_pn_unregister_self(container_of(cb, struct goro_pn, unreg_work));
}

/* The thread died registered: free the pn once it is off its CPU for good. */
static void goro_pn_reap_fn(struct work_struct *work)
{
	struct goro_pn *pn = container_of(to_delayed_work(work),
					  struct goro_pn, reap);
	struct task_struct *task = pn->task;

	if (READ_ONCE(task->__state) != TASK_DEAD ||
	    smp_load_acquire(&task->on_cpu)) {
		schedule_delayed_work(&pn->reap, GORO_PN_REAP_DELAY);
		return;
	}
	goro_pn_free(pn);
}

/* task_work of a LOST M: runs after its syscall, before user code. */
static void goro_pn_sig_fn(struct callback_head *cb)
{
	struct goro_pn *pn = container_of(cb, struct goro_pn, sig_work);
	struct goro_m *m;

	clear_bit(GORO_PN_SIGQ, &pn->flags);

	rcu_read_lock();
	m = rcu_dereference(pn->m);
	if (m && current->self_exec_id == pn->exec_id) {
		/* the sysmon may not have published LOST yet */
		cmpxchg(&m->inst->shm[m->slot].handoff, GORO_HANDOFF_BLOCKED,
			GORO_HANDOFF_LOST);
		goro_signal_thread(current, READ_ONCE(pn->lost_signo));
	}
	rcu_read_unlock();

	if (test_bit(GORO_PN_FREE_BY_SIG, &pn->flags))
		goro_pn_free(pn);
}

/*
 * The user registers current entered the kernel with, into its slot: while
 * the P is handed off they are the goroutine's, and only user space's
 * collector knows which of them hold pointers.  current is in the kernel,
 * so its pt_regs stay put; the slot is kernel memory, no fault.
 */
static void goro_pn_save_regs(struct goro_mslot *ms)
{
#ifdef CONFIG_X86_64
	const struct pt_regs *r = task_pt_regs(current);

	ms->regs[GORO_REG_AX] = r->ax;
	ms->regs[GORO_REG_BX] = r->bx;
	ms->regs[GORO_REG_CX] = r->cx;
	ms->regs[GORO_REG_DX] = r->dx;
	ms->regs[GORO_REG_SI] = r->si;
	ms->regs[GORO_REG_DI] = r->di;
	ms->regs[GORO_REG_BP] = r->bp;
	ms->regs[GORO_REG_SP] = r->sp;
	ms->regs[GORO_REG_R8 + 0] = r->r8;
	ms->regs[GORO_REG_R8 + 1] = r->r9;
	ms->regs[GORO_REG_R8 + 2] = r->r10;
	ms->regs[GORO_REG_R8 + 3] = r->r11;
	ms->regs[GORO_REG_R8 + 4] = r->r12;
	ms->regs[GORO_REG_R8 + 5] = r->r13;
	ms->regs[GORO_REG_R8 + 6] = r->r14;
	ms->regs[GORO_REG_R8 + 7] = r->r15;
#endif
}

/*
 * Called under the rq lock as the M is switched out.  Only cmpxchg,
 * a time stamp and irq_work_queue(): no wake-up, no allocation, no
 * signal can be sent with the rq lock held.
 */
static void goro_pn_sched_out(struct preempt_notifier *n,
			      struct task_struct *next)
{
	struct goro_pn *pn = container_of(n, struct goro_pn, pn);
	struct goro_mslot *ms;
	struct goro_inst *inst;
	struct goro_m *m;

	/* preempted or yielding, not blocking; or on its way out */
	if (READ_ONCE(current->__state) == TASK_RUNNING ||
	    (current->flags & PF_EXITING))
		return;

	/* preemption is off here: an RCU-sched read side, no rcu_read_lock() */
	m = rcu_dereference_sched(pn->m);
	if (!m)
		return;
	inst = m->inst;
	if (!READ_ONCE(inst->sysmon.enabled))
		return;
	/*
	 * An M that blocks the hand-off's signal could not be told that
	 * its P is gone: it would run on without it.  It keeps its P
	 * instead, as a block without goro.ko does.  Only this thread
	 * changes its own mask, and it is here, not in sigprocmask.
	 */
	if (sigismember(&current->blocked, READ_ONCE(inst->sysmon.signo)))
		return;
	ms = &inst->shm[m->slot];
	if (READ_ONCE(ms->status) != GORO_MSTATUS_RUNNING || !READ_ONCE(ms->p))
		return;
	/* a LOST not yet cleared by user space: its P is gone already */
	if (cmpxchg(&ms->handoff, GORO_HANDOFF_NONE, GORO_HANDOFF_BLOCKED) !=
	    GORO_HANDOFF_NONE)
		return;
	/* before kstate's release: the sysmon, and through the slot's LOST
	 * the M it wakes, see the registers of this block */
	goro_pn_save_regs(ms);
	WRITE_ONCE(pn->blocked_since, ktime_get_ns());
	atomic_set_release(&pn->kstate, GORO_HANDOFF_BLOCKED);
	irq_work_queue(&inst->sysmon.kick);
}

/* Called in the M itself, preemption off, after the rq lock is dropped. */
static void goro_pn_sched_in(struct preempt_notifier *n, int cpu)
{
	struct goro_pn *pn = container_of(n, struct goro_pn, pn);
	struct goro_m *m;
	int old;

	if (atomic_read(&pn->kstate) == GORO_HANDOFF_NONE)
		return;

	old = atomic_xchg(&pn->kstate, GORO_HANDOFF_NONE);
	if (old == GORO_HANDOFF_BLOCKED) {
		m = rcu_dereference_sched(pn->m);
		/*
		 * The slot may say LOST although our copy said BLOCKED: a
		 * sysmon that moved our copy to LOST for an earlier block
		 * (which we settled) published LOST late, during this one.
		 * The idle M it woke acts on the slot: so must we.
		 */
		if (m && cmpxchg(&m->inst->shm[m->slot].handoff,
				 GORO_HANDOFF_BLOCKED, GORO_HANDOFF_NONE) ==
			 GORO_HANDOFF_LOST)
			old = GORO_HANDOFF_LOST;
	}
	if (old == GORO_HANDOFF_LOST &&
	    !test_and_set_bit(GORO_PN_SIGQ, &pn->flags)) {
		init_task_work(&pn->sig_work, goro_pn_sig_fn);
		if (task_work_add(current, &pn->sig_work, TWA_RESUME))
			clear_bit(GORO_PN_SIGQ, &pn->flags);
	}
}

static struct preempt_ops goro_pn_ops = {
	.sched_in	= goro_pn_sched_in,
	.sched_out	= goro_pn_sched_out,
};

/* For the calling thread, which is about to register as an M. */
struct goro_pn *goro_pn_create(void)
{
	struct goro_pn *pn;

	pn = kzalloc(sizeof(*pn), GFP_KERNEL_ACCOUNT);
	if (!pn)
		return NULL;
	preempt_notifier_init(&pn->pn, &goro_pn_ops);
	pn->task = get_task_struct(current);
	pn->exec_id = current->self_exec_id;
	atomic_set(&pn->kstate, GORO_HANDOFF_NONE);
	INIT_DELAYED_WORK(&pn->reap, goro_pn_reap_fn);
	/* the notifier's code must stay while any thread can call it */
	__module_get(THIS_MODULE);
	return pn;
}

/*
 * The preempt-notifier static key is taken once for the module's life
 * rather than per M: flipping it patches the scheduler's text, which
 * per M_REGISTER/M_UNREGISTER would be a stop-the-world event each time.
 */
void goro_sysmon_module_init(void)
{
	preempt_notifier_inc();
}

/* After rcu_barrier(): no goro_pn is left, none registered anywhere. */
void goro_sysmon_module_exit(void)
{
	preempt_notifier_dec();
}

/* A pn that was never attached (registration failed). */
void goro_pn_destroy(struct goro_pn *pn)
{
	goro_pn_free(pn);
}

/* Publish m and register on the calling thread, m's own. */
void goro_pn_attach(struct goro_pn *pn, struct goro_m *m)
{
	m->pn = pn;
	rcu_assign_pointer(pn->m, m);
	preempt_disable();
	preempt_notifier_register(&pn->pn);
	preempt_enable();
}

/*
 * m is being removed: from now on the notifier is a no-op.  Unregister
 * it now from its own thread, else on that thread's next return to
 * user space or in its do_exit(), else (past exit_task_work()) free it
 * once the thread is gone.
 */
void goro_pn_detach(struct goro_pn *pn)
{
	RCU_INIT_POINTER(pn->m, NULL);

	if (pn->task == current) {
		goro_pn_unregister_self(pn);
		return;
	}
	init_task_work(&pn->unreg_work, goro_pn_unreg_fn);
	if (!task_work_add(pn->task, &pn->unreg_work, TWA_RESUME))
		return;
	schedule_delayed_work(&pn->reap, 0);
}
