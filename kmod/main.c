// SPDX-License-Identifier: GPL-2.0
/*
 * goro.ko: the /dev/goro misc device, instance lifetime, ioctl dispatch
 * and the mmap of the shared slot area.
 *
 * Invariants kept here: an instance belongs to the thread group that
 * opened it, and every ioctl or mmap from any other process is refused
 * with -EPERM before anything else is looked at; the dispatcher only
 * routes, each handler validates its own struct; release() runs only
 * when no handler can be running (the syscall layer holds the file), so
 * it may free everything without waiting for sleepers.  It stops the
 * sysmon first and frees the instance only after an RCU grace period
 * that follows the removal of the Ms, because their preempt notifiers
 * (sysmon.c) may be running on other CPUs without any reference.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/vmalloc.h>

#include "goro.h"

#define CREATE_TRACE_POINTS
#include "trace.h"

static bool goro_is_owner(const struct goro_inst *inst)
{
	return task_tgid(current) == inst->owner;
}

static int goro_info(struct goro_inst *inst, void __user *argp)
{
	struct goro_info info;

	if (copy_from_user(&info, argp, sizeof(info)))
		return -EFAULT;
	if (info.flags || !goro_all_zero(info.reserved, ARRAY_SIZE(info.reserved)))
		return -EINVAL;

	info.abi_version = GORO_ABI_VERSION;
	info.features = GORO_FEAT_PARK | GORO_FEAT_NOTE | GORO_FEAT_SHM |
			GORO_FEAT_TRACE | GORO_FEAT_SYSMON |
			GORO_FEAT_NETPOLL;
	if (IS_ENABLED(CONFIG_X86_64))
		info.features |= GORO_FEAT_BLOCKREGS;
	info.max_slots = GORO_MAX_SLOTS;
	info.slot_size = sizeof(struct goro_mslot);
	info.shm_size = GORO_SHM_SIZE;

	if (copy_to_user(argp, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long goro_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct goro_inst *inst = file->private_data;
	void __user *argp = (void __user *)arg;

	if (!goro_is_owner(inst))
		return -EPERM;

	switch (cmd) {
	case GORO_IOC_INFO:
		return goro_info(inst, argp);
	case GORO_IOC_M_REGISTER:
		return goro_m_register(inst, argp);
	case GORO_IOC_M_UNREGISTER:
		return goro_m_unregister(inst, argp);
	case GORO_IOC_M_PARK:
		return goro_m_park(inst, argp);
	case GORO_IOC_M_UNPARK:
		return goro_m_unpark(inst, argp);
	case GORO_IOC_M_SWITCH:
		return goro_m_switch(inst, argp);
	case GORO_IOC_NOTE_SLEEP:
		return goro_note_sleep(inst, argp);
	case GORO_IOC_NOTE_WAKEUP:
		return goro_note_wakeup(inst, argp);
	case GORO_IOC_NOTE_CLEAR:
		return goro_note_clear(inst, argp);
	case GORO_IOC_SYSMON_CONFIG:
		return goro_sysmon_config(inst, argp);
	case GORO_IOC_NETPOLL:
		return goro_netpoll(inst, argp);
	default:
		return -ENOTTY;
	}
}

static void goro_vma_set_flags(struct vm_area_struct *vma, unsigned long set,
			       unsigned long clear)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_mod(vma, set, clear);
#else
	vma->vm_flags = (vma->vm_flags | set) & ~clear;
#endif
}

/*
 * The slot area: offset 0 only, at most GORO_SHM_SIZE bytes, shared (a
 * private copy would never see the kernel's writes).  It can never be
 * made executable, and neither grows nor lands in core dumps.
 */
static int goro_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct goro_inst *inst = file->private_data;
	unsigned long len = vma->vm_end - vma->vm_start;

	if (!goro_is_owner(inst))
		return -EPERM;
	if (vma->vm_pgoff || len > GORO_SHM_SIZE)
		return -EINVAL;
	if (!(vma->vm_flags & VM_SHARED) || (vma->vm_flags & VM_EXEC))
		return -EINVAL;

	goro_vma_set_flags(vma, VM_DONTEXPAND | VM_DONTDUMP, VM_MAYEXEC);
	return remap_vmalloc_range(vma, inst->shm, 0);
}

/*
 * debugfs: goro/<tgid>-<n> per instance, for whoever debugs a runtime
 * (root): its Ms with what their slots say and the kernel's counters,
 * and the sysmon's configuration.  Read-only; removed (and drained of
 * readers, which debugfs guarantees) before the instance is freed.
 */
static struct dentry *goro_dbg_root;
static atomic_t goro_dbg_seq = ATOMIC_INIT(0);

static int goro_dbg_show(struct seq_file *sf, void *unused)
{
	struct goro_inst *inst = sf->private;
	struct goro_sysmon *sm = &inst->sysmon;
	unsigned int nr_m, i;

	mutex_lock(&inst->m_lock);
	nr_m = inst->nr_m;
	mutex_unlock(&inst->m_lock);
	seq_printf(sf, "tgid %d\nms %u\nnotes %u\n", pid_nr(inst->owner),
		   nr_m, READ_ONCE(inst->nr_notes));
	seq_printf(sf, "sysmon %s slice_ns %llu blocked_ns %llu signo %u\n",
		   READ_ONCE(sm->enabled) ? "on" : "off",
		   READ_ONCE(sm->slice_ns), READ_ONCE(sm->blocked_ns),
		   READ_ONCE(sm->signo));
	seq_printf(sf, "netpoll fd %d wakes %lld ioparks %lld\n",
		   goro_netpoll_fd(inst), atomic64_read(&inst->np_wakes),
		   atomic64_read(&inst->np_ioparks));
	seq_puts(sf, "slot tid status p nparks nwakes npreempts nhandoffs\n");
	for (i = 0; i < GORO_MAX_SLOTS; i++) {
		struct goro_mslot *s = &inst->shm[i];
		u32 tid = READ_ONCE(s->tid);

		if (!tid)
			continue;
		seq_printf(sf, "%u %u %u %u %llu %llu %u %u\n", i, tid,
			   READ_ONCE(s->status), READ_ONCE(s->p),
			   READ_ONCE(s->nparks), READ_ONCE(s->nwakes),
			   READ_ONCE(s->npreempts), READ_ONCE(s->nhandoffs));
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(goro_dbg);

static void goro_dbg_add(struct goro_inst *inst)
{
	char name[32];

	snprintf(name, sizeof(name), "%d-%d", pid_nr(inst->owner),
		 atomic_inc_return(&goro_dbg_seq));
	inst->dbg = debugfs_create_file(name, 0400, goro_dbg_root, inst,
					&goro_dbg_fops);
}

static int goro_open(struct inode *inode, struct file *file)
{
	struct goro_inst *inst;

	inst = kvzalloc(sizeof(*inst), GFP_KERNEL_ACCOUNT);
	if (!inst)
		return -ENOMEM;

	inst->shm = vmalloc_user(GORO_SHM_SIZE);
	if (!inst->shm)
		goto out_free_inst;

	kref_init(&inst->ref);
	inst->owner = get_pid(task_tgid(current));
	mutex_init(&inst->m_lock);
	xa_init(&inst->mtab);
	mutex_init(&inst->note_lock);
	xa_init(&inst->notes);
	mutex_init(&inst->np_lock);
	init_waitqueue_head(&inst->np_wq);
	goro_sysmon_init(inst);
	goro_dbg_add(inst);

	file->private_data = inst;
	/* The instance is a runtime, not a stream: no seeking, no pread. */
	return nonseekable_open(inode, file);

out_free_inst:
	kvfree(inst);
	return -ENOMEM;
}

static void goro_inst_free(struct kref *ref)
{
	struct goro_inst *inst = container_of(ref, struct goro_inst, ref);

	debugfs_remove(inst->dbg);
	goro_netpoll_release(inst);
	goro_sysmon_stop(inst);
	goro_m_release_all(inst);
	goro_note_release_all(inst);
	/*
	 * Preempt notifiers of the removed Ms may still be inside their
	 * callbacks using m->inst: wait them out, then the kick they may
	 * have queued.
	 */
	if (inst->had_m)
		synchronize_rcu();
	goro_sysmon_destroy(inst);
	xa_destroy(&inst->mtab);
	xa_destroy(&inst->notes);
	mutex_destroy(&inst->m_lock);
	mutex_destroy(&inst->note_lock);
	mutex_destroy(&inst->np_lock);
	vfree(inst->shm);
	put_pid(inst->owner);
	kvfree(inst);
}

static int goro_release(struct inode *inode, struct file *file)
{
	struct goro_inst *inst = file->private_data;

	kref_put(&inst->ref, goro_inst_free);
	return 0;
}

static const struct file_operations goro_fops = {
	.owner		= THIS_MODULE,
	.open		= goro_open,
	.release	= goro_release,
	.unlocked_ioctl	= goro_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.mmap		= goro_mmap,
};

static struct miscdevice goro_misc = {
	.minor		= MISC_DYNAMIC_MINOR,
	.name		= "goro",
	.fops		= &goro_fops,
	.mode		= 0666,
};

static int __init goro_init(void)
{
	int ret;

	BUILD_BUG_ON(sizeof(struct goro_mslot) != 192);
	BUILD_BUG_ON(sizeof(struct goro_info) % 8);
	BUILD_BUG_ON(sizeof(struct goro_note) % 8);
	BUILD_BUG_ON(sizeof(struct goro_sysmon_config) % 8);
	BUILD_BUG_ON(sizeof(struct goro_netpoll) % 8);
	BUILD_BUG_ON(sizeof(struct goro_m_park) % 8);

	goro_sysmon_module_init();
	goro_dbg_root = debugfs_create_dir("goro", NULL);
	ret = misc_register(&goro_misc);
	if (ret) {
		pr_err("cannot register /dev/goro: %d\n", ret);
		debugfs_remove(goro_dbg_root);
		goro_sysmon_module_exit();
		return ret;
	}
	pr_info("abi %d, %d slots\n", GORO_ABI_VERSION, GORO_MAX_SLOTS);
	return 0;
}

static void __exit goro_exit(void)
{
	misc_deregister(&goro_misc);
	debugfs_remove(goro_dbg_root);
	/* Ms and notifiers are freed by RCU callbacks in this module's text. */
	rcu_barrier();
	goro_sysmon_module_exit();
}

module_init(goro_init);
module_exit(goro_exit);

MODULE_DESCRIPTION("goro: kernel assistance for the goro runtime");
MODULE_AUTHOR("goro developers");
MODULE_LICENSE("GPL");
