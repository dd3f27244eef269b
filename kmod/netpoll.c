// SPDX-License-Identifier: GPL-2.0
/*
 * goro.ko: GORO_IOC_NETPOLL, one wait for "work or I/O".
 *
 * libgoro's network poller is an io_uring (or an epoll instance).  An
 * idle M used to block in the poller while the other idle Ms parked in
 * M_PARK: two kinds of sleepers, woken two ways.  NETPOLL binds the
 * poller's fd to the instance so that an M parked in M_PARK with
 * GORO_PARK_NETPOLL also wakes when that fd becomes readable, and
 * learns from the return value (GORO_PARK_IO) that it should poll.
 *
 * Objects.  struct goro_np is the binding: a reference on the bound
 * file (fget at bind, fput at unbind), and a wait queue entry hooked on
 * the file's wait queue head through vfs_poll() with our own poll_table
 * queue proc.  inst->np points to it, under inst->np_lock (a mutex);
 * bind, unbind and release() change it.  The entry's wake function runs
 * in the file's wake-up, under that queue's spinlock, maybe in hard
 * irq: it only counts and wakes inst->np_wq, the instance's queue of
 * parked Ms that asked for I/O.  Unbind takes the entry off the file's
 * queue under the queue's lock, so that once it returns no wake function
 * runs on the binding any more and it may be freed.
 *
 * A file whose queue head dies before the file (signalfd, binder: they
 * wake with POLLFREE) is left at once in the wake function, which then
 * clears np->wqh with release ordering; unbind reads it under RCU (the
 * owner of such a queue frees it only after a grace period).  Such a
 * binding wakes nobody any more: parkers still see the fd's level at
 * each wake-up of theirs.
 *
 * Parker protocol (goro_np_waiter, park.c's goro_m_wait):
 *
 *   parker                                 wake function (file's wake-up)
 *   0. begin: under np_lock, get_file()    1. wake_up(&inst->np_wq):
 *      and gen; woken = 1; queue on           each parker's entry sets
 *      np_wq                                  woken = 1, smp_mb(), then
 *   1. prepare_to_wait(&m->wq)                wakes its task
 *   2. token? done (0)
 *   3. xchg(woken, 0) was 1? back to TASK_RUNNING; unbound since
 *      begin (gen changed) or vfs_poll(file, NULL) & EPOLLIN:
 *      done (GORO_PARK_IO); else back to 1
 *   4. signal? deadline? sleep, back to 1
 *
 * The level check runs in TASK_RUNNING (vfs_poll may sleep: epoll takes
 * a mutex); a wake-up that comes after it sets woken again, and the
 * next round sees it before sleeping, so none is lost.  Every parker
 * wakes on every wake-up: libgoro parks one M with the flag.
 *
 * Alternatives rejected: a sequence count instead of the level check
 * (readiness that predates the park would not wake it); waking through
 * the M's own queue from the file's wake-up (the binding would need the
 * set of parked Ms under an irq-safe lock of its own).
 */

#include <linux/file.h>
#include <linux/fs.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "goro.h"
#include "trace.h"

struct goro_np {
	struct goro_inst *inst;
	struct file *file;		/* reference held */
	int fd;				/* as bound, for traces and debugfs */
	bool extra_queue;		/* vfs_poll() offered a second queue */
	wait_queue_head_t *wqh;		/* NULL once left on POLLFREE */
	wait_queue_entry_t wait;	/* on *wqh */
	poll_table pt;
};

/* The file's wake-up: atomic context, the file's queue lock held. */
static int goro_np_wake(wait_queue_entry_t *wait, unsigned int mode, int sync,
			void *key)
{
	struct goro_np *np = container_of(wait, struct goro_np, wait);
	struct goro_inst *inst = np->inst;
	__poll_t mask = key_to_poll(key);

	if (mask & POLLFREE) {
		list_del_init(&wait->entry);
		smp_store_release(&np->wqh, NULL);
	} else if (mask && !(mask & EPOLLIN)) {
		return 0;
	}
	atomic64_inc(&inst->np_wakes);
	trace_netpoll_wake(goro_inst_tgid(inst), np->fd, (u32)mask,
			   atomic_read(&inst->np_parkers));
	wake_up_interruptible(&inst->np_wq);
	return 0;
}

static void goro_np_queue(struct file *file, wait_queue_head_t *wqh,
			  poll_table *pt)
{
	struct goro_np *np = container_of(pt, struct goro_np, pt);

	/* One queue per binding; a file with more is refused by bind. */
	if (np->wqh) {
		np->extra_queue = true;
		return;
	}
	np->wqh = wqh;
	init_waitqueue_func_entry(&np->wait, goro_np_wake);
	add_wait_queue(wqh, &np->wait);
}

/* Take the entry off the file's queue: no wake function runs after. */
static void goro_np_unhook(struct goro_np *np)
{
	wait_queue_head_t *wqh;
	unsigned long flags;

	rcu_read_lock();
	wqh = smp_load_acquire(&np->wqh);
	if (wqh) {
		spin_lock_irqsave(&wqh->lock, flags);
		list_del_init(&np->wait.entry);
		spin_unlock_irqrestore(&wqh->lock, flags);
	}
	rcu_read_unlock();
}

static void goro_np_free(struct goro_np *np)
{
	goro_np_unhook(np);
	fput(np->file);
	kfree(np);
}

static void goro_np_unbind(struct goro_inst *inst)
{
	struct goro_np *np = inst->np;

	lockdep_assert_held(&inst->np_lock);

	inst->np = NULL;
	WRITE_ONCE(inst->np_gen, inst->np_gen + 1);
	goro_np_free(np);
	/* parkers see the generation change and return GORO_PARK_IO */
	wake_up_interruptible(&inst->np_wq);
}

static int goro_np_bind(struct goro_inst *inst, int fd)
{
	struct goro_np *np;
	int ret;

	if (fd < 0)
		return -EBADF;
	np = kzalloc(sizeof(*np), GFP_KERNEL_ACCOUNT);
	if (!np)
		return -ENOMEM;
	np->inst = inst;
	np->fd = fd;
	np->file = fget(fd);
	if (!np->file) {
		ret = -EBADF;
		goto out_free;
	}
	ret = -EINVAL;
	if (!file_can_poll(np->file))
		goto out_fput;

	mutex_lock(&inst->np_lock);
	ret = -EBUSY;
	if (inst->np)
		goto out_unlock;
	init_poll_funcptr(&np->pt, goro_np_queue);
	vfs_poll(np->file, &np->pt);
	ret = -EINVAL;
	if (!np->wqh)
		goto out_unlock;
	if (np->extra_queue) {
		goro_np_unhook(np);
		goto out_unlock;
	}
	inst->np = np;
	mutex_unlock(&inst->np_lock);
	return 0;

out_unlock:
	mutex_unlock(&inst->np_lock);
out_fput:
	fput(np->file);
out_free:
	kfree(np);
	return ret;
}

int goro_netpoll(struct goro_inst *inst, void __user *argp)
{
	struct goro_netpoll arg;
	int ret;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if ((arg.flags & ~GORO_NETPOLL_UNBIND) ||
	    !goro_all_zero(arg.reserved, ARRAY_SIZE(arg.reserved)))
		return -EINVAL;

	if (!(arg.flags & GORO_NETPOLL_UNBIND))
		return goro_np_bind(inst, arg.fd);

	if (arg.fd != -1)
		return -EINVAL;
	mutex_lock(&inst->np_lock);
	ret = -ENOENT;
	if (inst->np) {
		goro_np_unbind(inst);
		ret = 0;
	}
	mutex_unlock(&inst->np_lock);
	return ret;
}

/* release(): no ioctl runs, so no parker either. */
void goro_netpoll_release(struct goro_inst *inst)
{
	mutex_lock(&inst->np_lock);
	if (inst->np)
		goro_np_unbind(inst);
	mutex_unlock(&inst->np_lock);
}

/* The bound fd for debugfs, -1 if none. */
int goro_netpoll_fd(struct goro_inst *inst)
{
	int fd = -1;

	mutex_lock(&inst->np_lock);
	if (inst->np)
		fd = inst->np->fd;
	mutex_unlock(&inst->np_lock);
	return fd;
}

/* A parker's entry on inst->np_wq (step 1 of the wake function). */
static int goro_np_waiter_wake(wait_queue_entry_t *wait, unsigned int mode,
			       int sync, void *key)
{
	struct goro_np_waiter *nw = container_of(wait, struct goro_np_waiter,
						 wait);

	atomic_set(&nw->woken, 1);
	/* pairs with the parker's set_current_state() before its xchg */
	smp_mb();
	return default_wake_function(wait, mode, sync, key);
}

/* Step 0: -ENOENT when nothing is bound. */
int goro_np_wait_begin(struct goro_inst *inst, struct goro_np_waiter *nw)
{
	mutex_lock(&inst->np_lock);
	if (!inst->np) {
		mutex_unlock(&inst->np_lock);
		return -ENOENT;
	}
	nw->file = get_file(inst->np->file);
	nw->gen = inst->np_gen;
	mutex_unlock(&inst->np_lock);

	/* the first round looks at the level: I/O may predate the park */
	atomic_set(&nw->woken, 1);
	init_waitqueue_func_entry(&nw->wait, goro_np_waiter_wake);
	nw->wait.private = current;
	add_wait_queue(&inst->np_wq, &nw->wait);
	atomic_inc(&inst->np_parkers);
	return 0;
}

void goro_np_wait_end(struct goro_inst *inst, struct goro_np_waiter *nw,
		      int ret)
{
	atomic_dec(&inst->np_parkers);
	remove_wait_queue(&inst->np_wq, &nw->wait);
	fput(nw->file);
	if (ret == GORO_PARK_IO)
		atomic64_inc(&inst->np_ioparks);
}

/*
 * Step 3, in TASK_INTERRUPTIBLE after prepare_to_wait(): -EAGAIN when
 * no wake-up came since the last look (sleep on), else back in
 * TASK_RUNNING, GORO_PARK_IO when the fd is readable or was unbound, 0
 * when it is not (look at the token again).
 */
int goro_np_wait_check(struct goro_inst *inst, struct goro_np_waiter *nw)
{
	if (!atomic_xchg(&nw->woken, 0))
		return -EAGAIN;
	__set_current_state(TASK_RUNNING);
	if (READ_ONCE(inst->np_gen) != nw->gen)
		return GORO_PARK_IO;
	return (vfs_poll(nw->file, NULL) & EPOLLIN) ? GORO_PARK_IO : 0;
}
