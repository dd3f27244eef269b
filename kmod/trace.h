/* SPDX-License-Identifier: GPL-2.0 */
/*
 * goro.ko tracepoints: goro:m_park, m_unpark, m_switch, note_sleep,
 * note_wakeup, note_clear, the sysmon's preempt and handoff, and
 * netpoll_wake.  The
 * ioctl ones fire once per call, on the way out, with the call's result;
 * the sysmon's once per signal sent and per P handed off; so that
 * `perf record -e 'goro:*'` shows what every park, wake-up and sysmon
 * decision was.  Fields are plain integers: the
 * instance's thread group id (the calling thread is perf's common_pid),
 * slots, note addresses, absolute deadlines (GORO_NO_DEADLINE shows as
 * 0xffffffffffffffff) and the returned errno.
 *
 * main.c defines CREATE_TRACE_POINTS; Kbuild puts this directory on the
 * include path for define_trace.h.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM goro

#if !defined(_GORO_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _GORO_TRACE_H

#include <linux/tracepoint.h>

TRACE_EVENT(m_park,
	TP_PROTO(pid_t tgid, u32 slot, u64 deadline_ns, bool slept, int ret),
	TP_ARGS(tgid, slot, deadline_ns, slept, ret),
	TP_STRUCT__entry(
		__field(pid_t, tgid)
		__field(u32, slot)
		__field(u64, deadline_ns)
		__field(bool, slept)
		__field(int, ret)
	),
	TP_fast_assign(
		__entry->tgid = tgid;
		__entry->slot = slot;
		__entry->deadline_ns = deadline_ns;
		__entry->slept = slept;
		__entry->ret = ret;
	),
	TP_printk("tgid=%d slot=%u deadline=%llu slept=%d ret=%d",
		  __entry->tgid, __entry->slot, __entry->deadline_ns,
		  __entry->slept, __entry->ret)
);

TRACE_EVENT(m_unpark,
	TP_PROTO(pid_t tgid, u32 target, int ret),
	TP_ARGS(tgid, target, ret),
	TP_STRUCT__entry(
		__field(pid_t, tgid)
		__field(u32, target)
		__field(int, ret)
	),
	TP_fast_assign(
		__entry->tgid = tgid;
		__entry->target = target;
		__entry->ret = ret;
	),
	TP_printk("tgid=%d target=%u ret=%d",
		  __entry->tgid, __entry->target, __entry->ret)
);

TRACE_EVENT(m_switch,
	TP_PROTO(pid_t tgid, u32 slot, u32 target, u64 deadline_ns, bool slept,
		 int ret),
	TP_ARGS(tgid, slot, target, deadline_ns, slept, ret),
	TP_STRUCT__entry(
		__field(pid_t, tgid)
		__field(u32, slot)
		__field(u32, target)
		__field(u64, deadline_ns)
		__field(bool, slept)
		__field(int, ret)
	),
	TP_fast_assign(
		__entry->tgid = tgid;
		__entry->slot = slot;
		__entry->target = target;
		__entry->deadline_ns = deadline_ns;
		__entry->slept = slept;
		__entry->ret = ret;
	),
	TP_printk("tgid=%d slot=%u target=%u deadline=%llu slept=%d ret=%d",
		  __entry->tgid, __entry->slot, __entry->target,
		  __entry->deadline_ns, __entry->slept, __entry->ret)
);

TRACE_EVENT(note_sleep,
	TP_PROTO(pid_t tgid, u64 addr, u64 deadline_ns, int ret),
	TP_ARGS(tgid, addr, deadline_ns, ret),
	TP_STRUCT__entry(
		__field(pid_t, tgid)
		__field(u64, addr)
		__field(u64, deadline_ns)
		__field(int, ret)
	),
	TP_fast_assign(
		__entry->tgid = tgid;
		__entry->addr = addr;
		__entry->deadline_ns = deadline_ns;
		__entry->ret = ret;
	),
	TP_printk("tgid=%d addr=0x%llx deadline=%llu ret=%d",
		  __entry->tgid, __entry->addr, __entry->deadline_ns,
		  __entry->ret)
);

DECLARE_EVENT_CLASS(goro_note_op,
	TP_PROTO(pid_t tgid, u64 addr, unsigned int nsleepers, int ret),
	TP_ARGS(tgid, addr, nsleepers, ret),
	TP_STRUCT__entry(
		__field(pid_t, tgid)
		__field(u64, addr)
		__field(unsigned int, nsleepers)
		__field(int, ret)
	),
	TP_fast_assign(
		__entry->tgid = tgid;
		__entry->addr = addr;
		__entry->nsleepers = nsleepers;
		__entry->ret = ret;
	),
	TP_printk("tgid=%d addr=0x%llx sleepers=%u ret=%d",
		  __entry->tgid, __entry->addr, __entry->nsleepers,
		  __entry->ret)
);

DEFINE_EVENT(goro_note_op, note_wakeup,
	TP_PROTO(pid_t tgid, u64 addr, unsigned int nsleepers, int ret),
	TP_ARGS(tgid, addr, nsleepers, ret)
);

DEFINE_EVENT(goro_note_op, note_clear,
	TP_PROTO(pid_t tgid, u64 addr, unsigned int nsleepers, int ret),
	TP_ARGS(tgid, addr, nsleepers, ret)
);

/* sysmon.c: a preemption signal sent to an M that overran its slice */
TRACE_EVENT(preempt,
	TP_PROTO(pid_t tgid, u32 slot, u64 curg, u64 ran_ns),
	TP_ARGS(tgid, slot, curg, ran_ns),
	TP_STRUCT__entry(
		__field(pid_t, tgid)
		__field(u32, slot)
		__field(u64, curg)
		__field(u64, ran_ns)
	),
	TP_fast_assign(
		__entry->tgid = tgid;
		__entry->slot = slot;
		__entry->curg = curg;
		__entry->ran_ns = ran_ns;
	),
	TP_printk("tgid=%d slot=%u curg=%llu ran_ns=%llu",
		  __entry->tgid, __entry->slot, __entry->curg, __entry->ran_ns)
);

/* sysmon.c: the P of a blocked M handed to an idle one */
TRACE_EVENT(handoff,
	TP_PROTO(pid_t tgid, u32 from_slot, u32 to_slot, u64 blocked_ns),
	TP_ARGS(tgid, from_slot, to_slot, blocked_ns),
	TP_STRUCT__entry(
		__field(pid_t, tgid)
		__field(u32, from_slot)
		__field(u32, to_slot)
		__field(u64, blocked_ns)
	),
	TP_fast_assign(
		__entry->tgid = tgid;
		__entry->from_slot = from_slot;
		__entry->to_slot = to_slot;
		__entry->blocked_ns = blocked_ns;
	),
	TP_printk("tgid=%d from_slot=%u to_slot=%u blocked_ns=%llu",
		  __entry->tgid, __entry->from_slot, __entry->to_slot,
		  __entry->blocked_ns)
);

/*
 * netpoll.c: the fd bound by GORO_IOC_NETPOLL woke its waiters (in the
 * file's wake-up, atomic context); mask is the wake-up's key (0: none
 * given), parkers how many Ms were parked with GORO_PARK_NETPOLL.
 */
TRACE_EVENT(netpoll_wake,
	TP_PROTO(pid_t tgid, int fd, u32 mask, u32 parkers),
	TP_ARGS(tgid, fd, mask, parkers),
	TP_STRUCT__entry(
		__field(pid_t, tgid)
		__field(int, fd)
		__field(u32, mask)
		__field(u32, parkers)
	),
	TP_fast_assign(
		__entry->tgid = tgid;
		__entry->fd = fd;
		__entry->mask = mask;
		__entry->parkers = parkers;
	),
	TP_printk("tgid=%d fd=%d mask=0x%x parkers=%u",
		  __entry->tgid, __entry->fd, __entry->mask, __entry->parkers)
);

#endif /* _GORO_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
