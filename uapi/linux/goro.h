/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * goro: kernel assistance for the goro user-space runtime (/dev/goro).
 *
 * This header is the whole ABI between goro.ko and libgoro; it is ABI
 * forever.  Rules every struct below follows:
 *
 *  - only __u32/__u64/__s64 fields, naturally aligned, each struct a
 *    multiple of 8 bytes, user pointers carried as __u64;
 *  - a flags word; unknown flag bits are rejected with -EINVAL;
 *  - explicit pad and reserved fields that must be zero on input
 *    (-EINVAL otherwise), checked before any work is done, so that they
 *    can become fields later;
 *  - timeouts are absolute CLOCK_MONOTONIC nanoseconds, GORO_NO_DEADLINE
 *    for none, so an interrupted call restarts with the same argument.
 *
 * One open() of /dev/goro creates an instance bound to the opening
 * process; every ioctl and mmap from another process fails with -EPERM.
 * GORO_IOC_INFO is the handshake: user space probes abi_version and
 * the feature bits instead of guessing from kernel versions.
 *
 * Documentation/userspace-api/goro.rst documents every ioctl and errno.
 */
#ifndef _UAPI_LINUX_GORO_H
#define _UAPI_LINUX_GORO_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define GORO_ABI_VERSION	1

/* Absolute deadline meaning "wait forever". */
#define GORO_NO_DEADLINE	(~(__u64)0)

/* Feature bits reported by GORO_IOC_INFO. */
#define GORO_FEAT_PARK		(1ULL << 0)	/* M_PARK/M_UNPARK/M_SWITCH */
#define GORO_FEAT_NOTE		(1ULL << 1)	/* NOTE_SLEEP/WAKEUP/CLEAR */
#define GORO_FEAT_SHM		(1ULL << 2)	/* mmap of the slot area */
#define GORO_FEAT_TRACE		(1ULL << 3)	/* goro:* tracepoints */
#define GORO_FEAT_SYSMON	(1ULL << 4)	/* SYSMON_CONFIG, preemption, hand-off */
#define GORO_FEAT_NETPOLL	(1ULL << 5)	/* NETPOLL, GORO_PARK_NETPOLL */
#define GORO_FEAT_BLOCKREGS	(1ULL << 6)	/* goro_mslot.regs */

/*
 * Shared slot area: mmap(NULL, info.shm_size, PROT_READ | PROT_WRITE,
 * MAP_SHARED, fd, 0).  Slot i lives at byte offset i * sizeof(struct
 * goro_mslot).  The mapping is writable by user space as a whole; the
 * kernel never trusts what it reads there for anything but scheduling
 * hints (it keeps its own copy of every decision), so a process that
 * scribbles over a kernel-owned field harms only itself.
 *
 * Ownership per field: "user" fields are written by libgoro and read by
 * the kernel; "kernel" fields are written by the kernel and read by
 * libgoro.
 */
#define GORO_MSTATUS_IDLE	0	/* M has no P, parked or spinning */
#define GORO_MSTATUS_RUNNING	1	/* M runs goroutine code on a P */
#define GORO_MSTATUS_SCHED	2	/* M runs the scheduler on a P */
#define GORO_MSTATUS_SYSCALL	3	/* M is in a syscall it announced */

struct goro_mslot {
	/* user: written by libgoro */
	__u64 curg;		/* id of the running goroutine, 0 = none */
	__u64 since_ns;		/* CLOCK_MONOTONIC ns when curg started */
	__u32 status;		/* GORO_MSTATUS_* */
	__u32 p;		/* index of the P held + 1, 0 = none */
	/* kernel: written by goro.ko */
	__u32 tid;		/* thread id of the M, 0 = free slot */
	__u32 kflags;		/* reserved for kernel decisions, 0 today */
	__u64 nparks;		/* M_PARK/M_SWITCH calls that slept */
	__u64 nwakes;		/* unparks delivered to this slot */
	/* shared: GORO_HANDOFF_*, changed by cmpxchg only (both sides) */
	__u32 handoff;
	/* kernel sets, user clears: slot + 1 of an M whose P this M must
	 * take over (it was unparked for that), 0 = none */
	__u32 retake;
	/* kernel: preemption signals sent to this M, and hand-offs of its P */
	__u32 npreempts;
	__u32 nhandoffs;
	/* kernel (GORO_FEAT_BLOCKREGS): the M's user registers when it last
	 * blocked holding a P (handoff NONE -> BLOCKED), GORO_REG_* order;
	 * they stay the goroutine's registers while its P is handed off */
	__u64 regs[16];
};

/* goro_mslot.regs indices (x86_64) */
#define GORO_REG_AX	0
#define GORO_REG_BX	1
#define GORO_REG_CX	2
#define GORO_REG_DX	3
#define GORO_REG_SI	4
#define GORO_REG_DI	5
#define GORO_REG_BP	6
#define GORO_REG_SP	7
#define GORO_REG_R8	8	/* r8 ... r15 follow in order */

/*
 * P hand-off (GORO_FEAT_SYSMON, sysmon enabled).  An M whose slot says
 * GORO_MSTATUS_RUNNING with p != 0 and that blocks in the kernel (any
 * sleep: read, nanosleep, flock, a futex) is marked BLOCKED by goro.ko
 * when it is switched out; when it is switched back in the kernel moves
 * BLOCKED back to NONE.  If it stays blocked past the blocked threshold
 * the sysmon moves BLOCKED to LOST, writes the blocked M's slot + 1 in
 * the retake field of an idle M (status IDLE, parked in M_PARK or
 * M_SWITCH, retake 0) and unparks it: that M now runs the P.  The blocked
 * M, when it wakes, gets the preemption signal on its way back to user
 * space, before it executes any user instruction; its handler sees LOST
 * and must not run goroutine code until it holds a P again, and then
 * moves LOST to NONE.  Without an idle M nothing is handed off.
 * As it marks the slot BLOCKED the kernel copies the M's user registers
 * (those saved at its entry to the kernel) into regs: a garbage
 * collector stopping the world while the P is away finds there the
 * pointers the goroutine holds only in registers.
 */
#define GORO_HANDOFF_NONE	0
#define GORO_HANDOFF_BLOCKED	1
#define GORO_HANDOFF_LOST	2

/* GORO_IOC_INFO: ABI handshake. flags and reserved must be zero. */
struct goro_info {
	__u32 abi_version;	/* out: GORO_ABI_VERSION */
	__u32 flags;		/* in: 0 */
	__u64 features;		/* out: GORO_FEAT_* */
	__u32 max_slots;	/* out: number of M slots of an instance */
	__u32 slot_size;	/* out: sizeof(struct goro_mslot) */
	__u64 shm_size;		/* out: bytes to mmap at offset 0 */
	__u64 reserved[4];	/* in: 0; out: 0 */
};

/*
 * GORO_IOC_M_REGISTER: the calling thread becomes an M of the instance
 * and is given the lowest free slot.  -EBUSY if it is one already,
 * -ENOSPC when every slot is taken.
 */
struct goro_m_register {
	__u32 flags;		/* in: 0 */
	__u32 slot;		/* out: the M's slot */
	__u64 reserved[3];	/* in: 0 */
};

/* GORO_IOC_M_UNREGISTER: the calling thread stops being an M (-EPERM if
 * it is not one).  Its slot is freed; a pending unpark token is dropped. */
struct goro_m_unregister {
	__u32 flags;		/* in: 0 */
	__u32 pad;		/* in: 0 */
	__u64 reserved[2];	/* in: 0 */
};

/*
 * GORO_IOC_M_PARK: park the calling M until it is unparked, the
 * deadline passes (-ETIMEDOUT) or a signal arrives (-EINTR; call again
 * with the same deadline).  Each M owns one unpark token (a semaphore of
 * one): an unpark that comes before the park is not lost, and the park
 * then returns 0 at once.  -EPERM if the caller is not an M.
 *
 * With GORO_PARK_NETPOLL (GORO_FEAT_NETPOLL) the park also ends when the
 * fd bound by GORO_IOC_NETPOLL is readable, and then returns
 * GORO_PARK_IO (a positive value) instead of 0: the caller should poll
 * that fd without blocking.  The token wins when both are there.  An I/O
 * return may be spurious (another thread reaped the events first, or
 * the binding went away meanwhile); it never consumes the token.
 * -ENOENT if no fd is bound when the park begins.
 */
#define GORO_PARK_NETPOLL	(1U << 0)
#define GORO_PARK_IO		1	/* return value: the bound fd is readable */

struct goro_m_park {
	__u64 deadline_ns;	/* in: absolute CLOCK_MONOTONIC, or GORO_NO_DEADLINE */
	__u32 flags;		/* in: 0 or GORO_PARK_NETPOLL */
	__u32 pad;		/* in: 0 */
	__u64 reserved[2];	/* in: 0 */
};

/* GORO_IOC_M_UNPARK: give slot's M its token and wake it if parked.
 * -EINVAL for a slot >= max_slots, -ESRCH for a free slot. */
struct goro_m_unpark {
	__u32 slot;		/* in */
	__u32 flags;		/* in: 0 */
	__u64 reserved[2];	/* in: 0 */
};

/*
 * GORO_IOC_M_SWITCH: unpark slot and park the caller, in one call, with
 * the hand-off hint that lets the woken M run on the caller's CPU.  The
 * unpark happens even when the park then fails (signal, timeout).
 * Errors: those of M_UNPARK for slot (the caller does not park then),
 * those of M_PARK for the caller; slot == caller's own slot is -EINVAL.
 */
struct goro_m_switch {
	__u64 deadline_ns;	/* in: as M_PARK */
	__u32 slot;		/* in: the M to wake */
	__u32 flags;		/* in: 0 */
	__u64 reserved[2];	/* in: 0 */
};

/*
 * GORO_IOC_NOTE_SLEEP / NOTE_WAKEUP / NOTE_CLEAR: Go's one-shot notes.
 * A note is named by a user address of the owning process (8-byte
 * aligned, non-zero: -EINVAL otherwise); the kernel keeps its state.
 * WAKEUP marks the note woken and wakes every sleeper; a second WAKEUP
 * before CLEAR is -EBUSY (Go throws "wakeup - double wakeup").  SLEEP
 * returns 0 at once on a woken note, else sleeps until WAKEUP, the
 * deadline (-ETIMEDOUT) or a signal (-EINTR).  CLEAR makes the note
 * unwoken again.  deadline_ns must be 0 for WAKEUP and CLEAR.  An
 * instance holds at most GORO_MAX_NOTES notes with state (-ENOSPC).
 */
#define GORO_MAX_NOTES		65536

struct goro_note {
	__u64 addr;		/* in: the note's key */
	__u64 deadline_ns;	/* in: SLEEP only, as M_PARK; else 0 */
	__u32 flags;		/* in: 0 */
	__u32 pad;		/* in: 0 */
	__u64 reserved[2];	/* in: 0 */
};

/*
 * GORO_IOC_SYSMON_CONFIG: configure and enable (flags GORO_SYSMON_ENABLE)
 * or disable (flags 0) the instance's kernel sysmon.  Zero fields take
 * the defaults; the effective values are written back.  While enabled
 * the sysmon sends signo (to that thread only) to an M whose slot has
 * said RUNNING the same curg for longer than slice_ns, again every
 * slice while it stays so, and hands off the P of an M blocked longer
 * than blocked_ns (see GORO_HANDOFF_*).  -EINVAL for a value out of
 * range, unknown flags or non-zero reserved fields.
 */
#define GORO_SYSMON_ENABLE		(1U << 0)
#define GORO_SYSMON_SLICE_DEFAULT	10000000ULL	/* 10 ms */
#define GORO_SYSMON_SLICE_MIN		100000ULL	/* 100 us */
#define GORO_SYSMON_SLICE_MAX		10000000000ULL	/* 10 s */
#define GORO_SYSMON_BLOCKED_DEFAULT	20000ULL	/* 20 us */
#define GORO_SYSMON_BLOCKED_MIN		5000ULL		/* 5 us */
#define GORO_SYSMON_BLOCKED_MAX		1000000000ULL	/* 1 s */
/* signo: 1..SIGRTMAX but SIGKILL and SIGSTOP; default SIGURG */

struct goro_sysmon_config {
	__u64 slice_ns;		/* in/out */
	__u64 blocked_ns;	/* in/out */
	__u32 signo;		/* in/out */
	__u32 flags;		/* in: GORO_SYSMON_ENABLE or 0 */
	__u64 reserved[2];	/* in: 0 */
};

/*
 * GORO_IOC_NETPOLL: bind a pollable fd of the calling process to the
 * instance (flags 0, fd >= 0), or unbind it (flags GORO_NETPOLL_UNBIND,
 * fd -1).  The fd is anything whose poll reports EPOLLIN when there is
 * something to reap: an io_uring's ring fd, an eventfd (for instance
 * one registered with io_uring_register_eventfd) or an epoll fd.  The
 * instance holds the file until unbind or close of /dev/goro, so closing
 * the fd number meanwhile changes nothing.  While bound, an M parked in
 * M_PARK with GORO_PARK_NETPOLL wakes when the file becomes readable;
 * every such M wakes (libgoro parks one).  Unbinding wakes them too.
 * Errors: -EBADF for an fd that is not open (or fd < 0 when binding),
 * -EINVAL for a file that cannot be polled (or one with more than one
 * wait queue), unknown flags, non-zero reserved fields or an UNBIND
 * with fd != -1; -EBUSY when an fd is already bound (unbind first);
 * -ENOENT for an UNBIND with nothing bound.
 */
#define GORO_NETPOLL_UNBIND	(1U << 0)

struct goro_netpoll {
	__s32 fd;		/* in: fd to bind, or -1 with GORO_NETPOLL_UNBIND */
	__u32 flags;		/* in: 0 or GORO_NETPOLL_UNBIND */
	__u64 reserved[3];	/* in: 0 */
};

#define GORO_IOC_MAGIC		0xBE

#define GORO_IOC_INFO		_IOWR(GORO_IOC_MAGIC, 0x00, struct goro_info)
#define GORO_IOC_M_REGISTER	_IOWR(GORO_IOC_MAGIC, 0x01, struct goro_m_register)
#define GORO_IOC_M_UNREGISTER	_IOW(GORO_IOC_MAGIC, 0x02, struct goro_m_unregister)
#define GORO_IOC_M_PARK		_IOW(GORO_IOC_MAGIC, 0x03, struct goro_m_park)
#define GORO_IOC_M_UNPARK	_IOW(GORO_IOC_MAGIC, 0x04, struct goro_m_unpark)
#define GORO_IOC_M_SWITCH	_IOW(GORO_IOC_MAGIC, 0x05, struct goro_m_switch)
#define GORO_IOC_NOTE_SLEEP	_IOW(GORO_IOC_MAGIC, 0x06, struct goro_note)
#define GORO_IOC_NOTE_WAKEUP	_IOW(GORO_IOC_MAGIC, 0x07, struct goro_note)
#define GORO_IOC_NOTE_CLEAR	_IOW(GORO_IOC_MAGIC, 0x08, struct goro_note)
#define GORO_IOC_SYSMON_CONFIG	_IOWR(GORO_IOC_MAGIC, 0x09, struct goro_sysmon_config)
#define GORO_IOC_NETPOLL	_IOW(GORO_IOC_MAGIC, 0x0a, struct goro_netpoll)

#endif /* _UAPI_LINUX_GORO_H */
