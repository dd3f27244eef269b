// SPDX-License-Identifier: GPL-2.0
/*
 * goro.ko: one-shot notes (NOTE_SLEEP, NOTE_WAKEUP, NOTE_CLEAR), Go's
 * notesleep/notewakeup/noteclear with the state kept in the kernel.
 *
 * A note is named by an 8-byte aligned user address; the address is only
 * a key, never dereferenced.  State: woken (set by WAKEUP, cleared by
 * CLEAR), the sleepers, and wakeseq, the number of WAKEUPs so far.
 *
 * Invariants (under inst->note_lock):
 *  - a note is in inst->notes iff it is woken or has sleepers, so that
 *    the table holds at most GORO_MAX_NOTES live notes and a note nobody
 *    uses costs nothing: the last sleeper to leave an unwoken note and a
 *    CLEAR of a note without sleepers free it;
 *  - nsleepers counts the threads between "decided to sleep" and "left",
 *    and keeps the note alive for them;
 *  - a sleeper returns 0 once it sees woken, or wakeseq moved since it
 *    went to sleep: a WAKEUP it slept through is not lost even when a
 *    CLEAR followed before it ran again.
 *
 * The table is an xarray keyed by addr >> 3 (user addresses cluster, so
 * the tree stays shallow) under a mutex, which lets the insert allocate
 * with GFP_KERNEL; notes are not on the M hand-off hot path.
 */

#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "goro.h"
#include "trace.h"

/* Copy in and validate; deadline_ns is allowed for NOTE_SLEEP only. */
static int goro_note_get(struct goro_note *arg, void __user *argp,
			 bool sleep)
{
	if (copy_from_user(arg, argp, sizeof(*arg)))
		return -EFAULT;
	if (arg->flags || arg->pad ||
	    !goro_all_zero(arg->reserved, ARRAY_SIZE(arg->reserved)))
		return -EINVAL;
	if (!sleep && arg->deadline_ns)
		return -EINVAL;
	if (!arg->addr || !IS_ALIGNED(arg->addr, 8))
		return -EINVAL;
	return 0;
}

static unsigned long goro_note_key(u64 addr)
{
	return addr >> 3;
}

static struct goro_knote *goro_note_find(struct goro_inst *inst, u64 addr)
{
	lockdep_assert_held(&inst->note_lock);

	return xa_load(&inst->notes, goro_note_key(addr));
}

/* The note for addr, created unwoken when it has no state yet. */
static struct goro_knote *goro_note_lookup_create(struct goro_inst *inst,
						  u64 addr)
{
	struct goro_knote *n;
	int ret;

	lockdep_assert_held(&inst->note_lock);

	n = goro_note_find(inst, addr);
	if (n)
		return n;
	if (inst->nr_notes >= GORO_MAX_NOTES)
		return ERR_PTR(-ENOSPC);

	n = kzalloc(sizeof(*n), GFP_KERNEL_ACCOUNT);
	if (!n)
		return ERR_PTR(-ENOMEM);
	n->addr = addr;
	init_waitqueue_head(&n->wq);

	ret = xa_err(xa_store(&inst->notes, goro_note_key(addr), n,
			      GFP_KERNEL_ACCOUNT));
	if (ret) {
		kfree(n);
		return ERR_PTR(ret);
	}
	inst->nr_notes++;
	return n;
}

/* Free n if nothing refers to it any more (the first invariant). */
static void goro_note_put_if_unused(struct goro_inst *inst,
				    struct goro_knote *n)
{
	lockdep_assert_held(&inst->note_lock);

	if (n->woken || n->nsleepers)
		return;
	xa_erase(&inst->notes, goro_note_key(n->addr));
	inst->nr_notes--;
	kfree(n);
}

static bool goro_note_is_woken(const struct goro_knote *n, u64 seq)
{
	return READ_ONCE(n->woken) || READ_ONCE(n->wakeseq) != seq;
}

int goro_note_sleep(struct goro_inst *inst, void __user *argp)
{
	struct goro_note arg;
	struct goro_knote *n;
	DEFINE_WAIT(wait);
	u64 seq;
	int ret;

	ret = goro_note_get(&arg, argp, true);
	if (ret)
		return ret;

	mutex_lock(&inst->note_lock);
	n = goro_note_lookup_create(inst, arg.addr);
	if (IS_ERR(n)) {
		ret = PTR_ERR(n);
		goto out_unlock;
	}
	if (n->woken)
		goto out_unlock;
	n->nsleepers++;
	seq = n->wakeseq;
	mutex_unlock(&inst->note_lock);

	/*
	 * WAKEUP sets woken/wakeseq under note_lock before waking the queue;
	 * prepare_to_wait() queues us before we re-read them, so either we
	 * see the new state or WAKEUP sees us queued.
	 */
	for (;;) {
		prepare_to_wait(&n->wq, &wait, TASK_INTERRUPTIBLE);
		if (goro_note_is_woken(n, seq)) {
			ret = 0;
			break;
		}
		if (signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		if (!goro_sleep_until(arg.deadline_ns)) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	finish_wait(&n->wq, &wait);

	mutex_lock(&inst->note_lock);
	/* A WAKEUP that raced with the signal or the timeout wins. */
	if (ret && n->wakeseq != seq)
		ret = 0;
	n->nsleepers--;
	goro_note_put_if_unused(inst, n);
out_unlock:
	mutex_unlock(&inst->note_lock);
	trace_note_sleep(goro_inst_tgid(inst), arg.addr, arg.deadline_ns, ret);
	return ret;
}

int goro_note_wakeup(struct goro_inst *inst, void __user *argp)
{
	struct goro_note arg;
	struct goro_knote *n;
	unsigned int nsleepers = 0;
	int ret;

	ret = goro_note_get(&arg, argp, false);
	if (ret)
		return ret;

	mutex_lock(&inst->note_lock);
	n = goro_note_lookup_create(inst, arg.addr);
	if (IS_ERR(n)) {
		ret = PTR_ERR(n);
		goto out_unlock;
	}
	if (n->woken) {
		ret = -EBUSY;
		goto out_unlock;
	}
	WRITE_ONCE(n->woken, true);
	WRITE_ONCE(n->wakeseq, n->wakeseq + 1);
	nsleepers = n->nsleepers;
	if (nsleepers)
		wake_up_interruptible_all(&n->wq);
out_unlock:
	mutex_unlock(&inst->note_lock);
	trace_note_wakeup(goro_inst_tgid(inst), arg.addr, nsleepers, ret);
	return ret;
}

int goro_note_clear(struct goro_inst *inst, void __user *argp)
{
	struct goro_note arg;
	struct goro_knote *n;
	unsigned int nsleepers = 0;
	int ret;

	ret = goro_note_get(&arg, argp, false);
	if (ret)
		return ret;

	mutex_lock(&inst->note_lock);
	n = goro_note_find(inst, arg.addr);
	if (n) {
		nsleepers = n->nsleepers;
		WRITE_ONCE(n->woken, false);
		goro_note_put_if_unused(inst, n);
	}
	mutex_unlock(&inst->note_lock);
	trace_note_clear(goro_inst_tgid(inst), arg.addr, nsleepers, 0);
	return 0;
}

void goro_note_release_all(struct goro_inst *inst)
{
	struct goro_knote *n;
	unsigned long key;

	mutex_lock(&inst->note_lock);
	xa_for_each(&inst->notes, key, n) {
		/* release() runs with no ioctl, hence no sleeper, left. */
		WARN_ON_ONCE(n->nsleepers);
		xa_erase(&inst->notes, key);
		kfree(n);
	}
	inst->nr_notes = 0;
	mutex_unlock(&inst->note_lock);
}
