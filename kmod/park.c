// SPDX-License-Identifier: GPL-2.0
/*
 * goro.ko: Ms and their parking (M_REGISTER, M_UNREGISTER, M_PARK,
 * M_UNPARK, M_SWITCH).
 *
 * The model is Go's notesleep/notewakeup on m.park, made a semaphore of
 * one: every M owns a token.  Unpark sets it (two unparks before a park
 * are one token) and wakes the M if it sleeps; park takes it, sleeping
 * until it is there, the absolute deadline passes or a signal comes.
 * The token is an atomic, so an unpark that precedes the park is never
 * lost and a park that finds the token returns without touching a lock.
 *
 * Protocol, parker (own thread) vs. unparker (any thread of the group):
 *
 *   parker                                unparker
 *   1. prepare_to_wait(&m->wq)            1. atomic_xchg(&m->token, 1)
 *      (queues itself, then sets             (full barrier)
 *      TASK_INTERRUPTIBLE: full barrier)
 *   2. atomic_xchg(&m->token, 0) == 1?    2. token was 0 and
 *      yes: done                             waitqueue_active(&m->wq)?
 *   3. signal? deadline passed?              yes: wake_up(&m->wq)
 *   4. schedule(), back to 1
 *
 * Either the parker sees the token in step 2 or the unparker sees the
 * parker queued in its step 2, never neither.  If the token was already
 * 1, an earlier unparker owns the wake-up.
 *
 * M_SWITCH is the direct hand-off between two Ms (Go's handoffp/startm
 * with a chosen M).  It wakes with __wake_up_sync(), telling the
 * scheduler the waker is about to sleep, then spins for up to
 * switch_spin_ns (module parameter) while the peer is on its way, before
 * parking.  In a ping-pong both sides then meet while spinning and
 * neither goes idle: no IPI, no idle exit, no select_task_rq().
 * Measured in the qemu TCG VM (2 vCPUs, 20000 round trips, 6.1 and
 * 6.12): about 0.1x a futex wake+wait pair with the spin, 1.1-1.2x
 * without it, 1.8x and worse with a plain (non-sync) wake-up.
 *
 * Alternatives rejected: a per-M spinlock or mutex around token and
 * sleeper (a lock round trip on every unpark, even when the M runs);
 * wake_up_process() on the task directly (no sync hint for modules, and
 * it would kick the M out of any other interruptible sleep it is in);
 * spinning in M_PARK (an idle M has nobody about to answer it; libgoro
 * spins in user space before parking, as Go's findrunnable does).
 *
 * M_PARK with GORO_PARK_NETPOLL also ends when the fd bound by
 * GORO_IOC_NETPOLL is readable (GORO_PARK_IO); netpoll.c owns that part
 * of the loop and its own ordering protocol.
 *
 * Deadlines are absolute CLOCK_MONOTONIC (hrtimer in HRTIMER_MODE_ABS
 * with the caller's timer slack), so a call interrupted by a signal
 * (-EINTR) is restarted by user space with the same argument.
 */

#include <linux/cpumask.h>
#include <linux/hrtimer.h>
#include <linux/moduleparam.h>
#include <linux/nospec.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "goro.h"
#include "trace.h"

static unsigned int switch_spin_ns = 50000;
module_param(switch_spin_ns, uint, 0644);
MODULE_PARM_DESC(switch_spin_ns,
		 "M_SWITCH: ns to spin for the reply before sleeping (0: never)");

bool goro_sleep_until(u64 deadline_ns)
{
	ktime_t expires;

	if (deadline_ns == GORO_NO_DEADLINE) {
		schedule();
		return true;
	}

	expires = deadline_ns > KTIME_MAX ? KTIME_MAX : (ktime_t)deadline_ns;
	if (ktime_get() >= expires) {
		__set_current_state(TASK_RUNNING);
		return false;
	}
	schedule_hrtimeout_range_clock(&expires, current->timer_slack_ns,
				       HRTIMER_MODE_ABS, CLOCK_MONOTONIC);
	return true;
}

/* The caller's own M; only its own thread or release() can free it. */
static struct goro_m *goro_m_self(struct goro_inst *inst)
{
	struct goro_m *m;

	rcu_read_lock();
	m = xa_load(&inst->mtab, current->pid);
	/* A stale M of an exited thread whose tid was reused is not ours. */
	if (m && m->task != current)
		m = NULL;
	rcu_read_unlock();
	return m;
}

bool goro_m_exited(const struct goro_m *m)
{
	return READ_ONCE(m->task->flags) & PF_EXITING;
}

static void goro_m_free_rcu(struct rcu_head *head)
{
	struct goro_m *m = container_of(head, struct goro_m, rcu);

	put_task_struct(m->task);
	kfree(m);
}

/*
 * Unpublish m; RCU readers (unparkers) may still see it until a grace
 * period has passed, so freeing waits for one.
 */
static void goro_m_remove(struct goro_inst *inst, struct goro_m *m)
{
	lockdep_assert_held(&inst->m_lock);

	xa_erase(&inst->mtab, m->gtid);
	RCU_INIT_POINTER(inst->ms[m->slot], NULL);
	WRITE_ONCE(inst->shm[m->slot].tid, 0);
	inst->nr_m--;
	/* its notifier may outlive it; the sysmon may still see m->pn */
	goro_pn_detach(m->pn);
	call_rcu(&m->rcu, goro_m_free_rcu);
}

static int goro_m_free_slot(struct goro_inst *inst)
{
	unsigned int i;

	lockdep_assert_held(&inst->m_lock);

	for (i = 0; i < GORO_MAX_SLOTS; i++)
		if (!rcu_access_pointer(inst->ms[i]))
			return i;
	return -ENOSPC;
}

/* Drop the Ms of threads that exited without M_UNREGISTER. */
static void goro_m_reap_exited(struct goro_inst *inst)
{
	struct goro_m *m;
	unsigned int i;

	lockdep_assert_held(&inst->m_lock);

	for (i = 0; i < GORO_MAX_SLOTS; i++) {
		m = rcu_dereference_protected(inst->ms[i],
					      lockdep_is_held(&inst->m_lock));
		if (m && goro_m_exited(m))
			goro_m_remove(inst, m);
	}
}

/* Publish m in the lowest free slot; returns the slot or -errno. */
static int goro_m_insert(struct goro_inst *inst, struct goro_m *m)
{
	struct goro_mslot *ms;
	struct goro_m *old;
	int slot, ret;

	lockdep_assert_held(&inst->m_lock);

	old = xa_load(&inst->mtab, m->gtid);
	if (old) {
		if (old->task == current)
			return -EBUSY;
		/* Our tid belonged to a thread that exited registered. */
		goro_m_remove(inst, old);
	}

	slot = goro_m_free_slot(inst);
	if (slot < 0) {
		goro_m_reap_exited(inst);
		slot = goro_m_free_slot(inst);
		if (slot < 0)
			return slot;
	}

	ret = xa_err(xa_store(&inst->mtab, m->gtid, m, GFP_KERNEL_ACCOUNT));
	if (ret)
		return ret;

	m->slot = slot;
	ms = &inst->shm[slot];
	WRITE_ONCE(ms->kflags, 0);
	WRITE_ONCE(ms->nparks, 0);
	WRITE_ONCE(ms->nwakes, 0);
	WRITE_ONCE(ms->handoff, GORO_HANDOFF_NONE);
	WRITE_ONCE(ms->retake, 0);
	WRITE_ONCE(ms->npreempts, 0);
	WRITE_ONCE(ms->nhandoffs, 0);
	memset(ms->regs, 0, sizeof(ms->regs));
	WRITE_ONCE(ms->tid, task_pid_vnr(current));
	inst->had_m = true;
	/* notifier first: the sysmon may look at m->pn once m is public */
	goro_pn_attach(m->pn, m);
	rcu_assign_pointer(inst->ms[slot], m);
	inst->nr_m++;
	return slot;
}

int goro_m_register(struct goro_inst *inst, void __user *argp)
{
	struct goro_m_register reg;
	struct goro_m *m;
	int slot;

	if (copy_from_user(&reg, argp, sizeof(reg)))
		return -EFAULT;
	if (reg.flags || !goro_all_zero(reg.reserved, ARRAY_SIZE(reg.reserved)))
		return -EINVAL;

	m = kzalloc(sizeof(*m), GFP_KERNEL_ACCOUNT);
	if (!m)
		return -ENOMEM;
	m->inst = inst;
	m->gtid = current->pid;
	atomic_set(&m->token, 0);
	init_waitqueue_head(&m->wq);
	atomic64_set(&m->nwakes, 0);
	m->pn = goro_pn_create();
	if (!m->pn) {
		kfree(m);
		return -ENOMEM;
	}
	m->task = get_task_struct(current);

	mutex_lock(&inst->m_lock);
	slot = goro_m_insert(inst, m);
	mutex_unlock(&inst->m_lock);
	if (slot < 0) {
		goro_pn_destroy(m->pn);
		put_task_struct(m->task);
		kfree(m);
		return slot;
	}

	/* a new M is about to run: the sysmon should look soon */
	goro_sysmon_m_running(inst);

	reg.slot = slot;
	if (copy_to_user(argp, &reg, sizeof(reg))) {
		/* Only this thread can have removed its own M meanwhile. */
		mutex_lock(&inst->m_lock);
		goro_m_remove(inst, m);
		mutex_unlock(&inst->m_lock);
		return -EFAULT;
	}
	return 0;
}

int goro_m_unregister(struct goro_inst *inst, void __user *argp)
{
	struct goro_m_unregister unreg;
	struct goro_m *m;
	int ret = 0;

	if (copy_from_user(&unreg, argp, sizeof(unreg)))
		return -EFAULT;
	if (unreg.flags || unreg.pad ||
	    !goro_all_zero(unreg.reserved, ARRAY_SIZE(unreg.reserved)))
		return -EINVAL;

	mutex_lock(&inst->m_lock);
	m = xa_load(&inst->mtab, current->pid);
	if (m && m->task == current)
		goro_m_remove(inst, m);
	else
		ret = -EPERM;
	mutex_unlock(&inst->m_lock);
	return ret;
}

void goro_m_release_all(struct goro_inst *inst)
{
	struct goro_m *m;
	unsigned int i;

	mutex_lock(&inst->m_lock);
	for (i = 0; i < GORO_MAX_SLOTS; i++) {
		m = rcu_dereference_protected(inst->ms[i],
					      lockdep_is_held(&inst->m_lock));
		if (m)
			goro_m_remove(inst, m);
	}
	mutex_unlock(&inst->m_lock);
}

static struct goro_m *goro_m_give(struct goro_inst *inst, u32 slot,
				  bool sync);

/* The sysmon's unpark of an idle M (under rcu_read_lock()). */
int goro_m_wake(struct goro_inst *inst, u32 slot)
{
	return PTR_ERR_OR_ZERO(goro_m_give(inst, slot, false));
}

static bool goro_m_take_token(struct goro_m *m)
{
	return atomic_read(&m->token) && atomic_xchg(&m->token, 0);
}

/*
 * Park the caller's own M (see the protocol at the top); with nw, also
 * until the NETPOLL fd is readable (netpoll.c's protocol, step 3).
 */
static int goro_m_wait(struct goro_m *m, u64 deadline_ns, bool *slept,
		       struct goro_np_waiter *nw)
{
	DEFINE_WAIT(wait);
	int ret;

	*slept = false;
	if (goro_m_take_token(m))
		return 0;

	/* the sysmon hands a P only to an M that waits here */
	WRITE_ONCE(m->parked, true);
	for (;;) {
		prepare_to_wait(&m->wq, &wait, TASK_INTERRUPTIBLE);
		if (goro_m_take_token(m)) {
			ret = 0;
			break;
		}
		if (nw) {
			ret = goro_np_wait_check(m->inst, nw);
			if (ret == GORO_PARK_IO)
				break;
			if (!ret)
				continue;
		}
		if (signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		if (!goro_sleep_until(deadline_ns)) {
			ret = -ETIMEDOUT;
			break;
		}
		*slept = true;
	}
	finish_wait(&m->wq, &wait);
	WRITE_ONCE(m->parked, false);
	goro_sysmon_m_running(m->inst);

	if (*slept)
		WRITE_ONCE(m->inst->shm[m->slot].nparks, ++m->nparks);
	return ret;
}

/*
 * Give slot's M its token and wake it if it sleeps.  Any thread of the
 * group may call.  Called under rcu_read_lock(); the M returned stays
 * valid until rcu_read_unlock().
 */
static struct goro_m *goro_m_give(struct goro_inst *inst, u32 slot,
				  bool sync)
{
	struct goro_m *m;

	RCU_LOCKDEP_WARN(!rcu_read_lock_held(), "goro: M lookup outside RCU");

	if (slot >= GORO_MAX_SLOTS)
		return ERR_PTR(-EINVAL);
	slot = array_index_nospec(slot, GORO_MAX_SLOTS);

	m = rcu_dereference(inst->ms[slot]);
	if (!m || goro_m_exited(m))
		return ERR_PTR(-ESRCH);

	WRITE_ONCE(inst->shm[slot].nwakes, atomic64_inc_return(&m->nwakes));
	/* atomic_xchg() is a full barrier: pairs with prepare_to_wait(). */
	if (!atomic_xchg(&m->token, 1) && waitqueue_active(&m->wq)) {
		if (sync)
			wake_up_interruptible_sync(&m->wq);
		else
			wake_up_interruptible(&m->wq);
	}
	return m;
}

/*
 * M_SWITCH's optimistic spin: the caller just handed work to peer; when
 * the reply (our token) comes within switch_spin_ns we return without
 * sleeping, and neither side pays for going idle and being woken by an
 * IPI.  The peer counts as on its way while it runs or has not taken its
 * token yet (a remote wake-up may still be queued on its CPU, its state
 * not yet TASK_RUNNING).  Stops at once when the peer is queued behind us
 * on this CPU or its vCPU is preempted, when it blocks elsewhere, when we
 * should reschedule or have a signal; never on a uniprocessor.
 * Called under rcu_read_lock() (peer is RCU-protected).
 */
static void goro_m_spin(struct goro_m *m, struct goro_m *peer)
{
	unsigned int spin_ns = READ_ONCE(switch_spin_ns);
	unsigned int i = 0;
	u64 until;

	if (!spin_ns || num_online_cpus() < 2)
		return;

	until = ktime_get_ns() + spin_ns;
	while (!atomic_read(&m->token)) {
		struct task_struct *p = peer->task;
		unsigned int cpu = task_cpu(p);

		if (need_resched() || signal_pending(current))
			return;
		if (!task_is_running(p) && !atomic_read(&peer->token))
			return;
		/*
		 * A sync wake-up often queues the peer on this very CPU, and
		 * does not ask us to reschedule: it cannot answer before we
		 * stop spinning.  Nor can a peer whose vCPU is not running.
		 */
		if ((cpu == raw_smp_processor_id() && !READ_ONCE(p->on_cpu)) ||
		    vcpu_is_preempted(cpu))
			return;
		if (!(++i & 31) && ktime_get_ns() > until)
			return;
		cpu_relax();
	}
}

int goro_m_park(struct goro_inst *inst, void __user *argp)
{
	struct goro_m_park park;
	struct goro_m *m;
	bool slept = false;
	int ret;

	if (copy_from_user(&park, argp, sizeof(park)))
		return -EFAULT;
	if ((park.flags & ~GORO_PARK_NETPOLL) || park.pad ||
	    !goro_all_zero(park.reserved, ARRAY_SIZE(park.reserved)))
		return -EINVAL;

	m = goro_m_self(inst);
	if (!m)
		return -EPERM;

	if (park.flags & GORO_PARK_NETPOLL) {
		struct goro_np_waiter nw;

		ret = goro_np_wait_begin(inst, &nw);
		if (!ret) {
			ret = goro_m_wait(m, park.deadline_ns, &slept, &nw);
			goro_np_wait_end(inst, &nw, ret);
		}
	} else {
		ret = goro_m_wait(m, park.deadline_ns, &slept, NULL);
	}
	trace_m_park(goro_inst_tgid(inst), m->slot, park.deadline_ns, slept,
		     ret);
	return ret;
}

int goro_m_unpark(struct goro_inst *inst, void __user *argp)
{
	struct goro_m_unpark unpark;
	int ret;

	if (copy_from_user(&unpark, argp, sizeof(unpark)))
		return -EFAULT;
	if (unpark.flags ||
	    !goro_all_zero(unpark.reserved, ARRAY_SIZE(unpark.reserved)))
		return -EINVAL;

	rcu_read_lock();
	ret = PTR_ERR_OR_ZERO(goro_m_give(inst, unpark.slot, false));
	rcu_read_unlock();
	trace_m_unpark(goro_inst_tgid(inst), unpark.slot, ret);
	return ret;
}

int goro_m_switch(struct goro_inst *inst, void __user *argp)
{
	struct goro_m_switch sw;
	struct goro_m *m, *peer;
	bool slept = false;
	int ret;

	if (copy_from_user(&sw, argp, sizeof(sw)))
		return -EFAULT;
	if (sw.flags || !goro_all_zero(sw.reserved, ARRAY_SIZE(sw.reserved)))
		return -EINVAL;

	m = goro_m_self(inst);
	if (!m)
		return -EPERM;
	if (sw.slot == m->slot)
		return -EINVAL;

	rcu_read_lock();
	peer = goro_m_give(inst, sw.slot, true);
	ret = PTR_ERR_OR_ZERO(peer);
	if (!ret)
		goro_m_spin(m, peer);
	rcu_read_unlock();
	if (!ret)
		ret = goro_m_wait(m, sw.deadline_ns, &slept, NULL);
	trace_m_switch(goro_inst_tgid(inst), m->slot, sw.slot, sw.deadline_ns,
		       slept, ret);
	return ret;
}
