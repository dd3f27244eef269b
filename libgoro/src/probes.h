/* SPDX-License-Identifier: MIT */
/*
 * probes.h - libgoro's USDT probes (provider "libgoro"), for perf:
 *
 *	perf buildid-cache --add ./prog      (or libgoro.so.0)
 *	perf probe -x ./prog 'sdt_libgoro:*'
 *	perf record -e 'sdt_libgoro:*' -- ./prog
 *
 * Each probe is a single nop in the code plus a note in .note.stapsdt
 * naming its arguments' locations; it costs nothing until perf (or
 * bpftrace, systemtap) puts a uprobe on it.  tools/goro-trace turns the
 * recorded events into a Chrome trace.  Arguments, in order:
 *
 *  goroutine_create  goid, parent goid
 *  goroutine_start   goid, P id          (runs on this thread from now)
 *  goroutine_park    goid, wait reason   (waitreason_string() names it;
 *                    fired on the goroutine's stack: perf -g shows who)
 *  goroutine_ready   goid, by goid (0: by the scheduler or a timer)
 *  goroutine_yield   goid
 *  goroutine_exit    goid
 *  chan_block        channel, goid, 1 send / 2 receive
 *  chan_unblock      channel, goid
 *  m_idle / m_wake   M id
 *  gc_start          cycle number, forced (goro_gc)
 *  gc_mark, gc_sweep cycle number (the stopped world marks, sweeps)
 *  gc_end            cycle number, pause ns, live bytes marked
 *  netpoll_wake      goroutines made ready, 1 if the poll blocked
 */
#ifndef GORO_PROBES_H
#define GORO_PROBES_H

#if __has_include(<sys/sdt.h>) && !defined(GORO_NO_PROBES)
#include <sys/sdt.h>
#define GORO_PROBE0(name)		STAP_PROBE(libgoro, name)
#define GORO_PROBE1(name, a)		STAP_PROBE1(libgoro, name, a)
#define GORO_PROBE2(name, a, b)		STAP_PROBE2(libgoro, name, a, b)
#define GORO_PROBE3(name, a, b, c)	STAP_PROBE3(libgoro, name, a, b, c)
#else
#define GORO_PROBE0(name)		do { } while (0)
#define GORO_PROBE1(name, a)		do { (void)(a); } while (0)
#define GORO_PROBE2(name, a, b)		do { (void)(a); (void)(b); } while (0)
#define GORO_PROBE3(name, a, b, c)	\
	do { (void)(a); (void)(b); (void)(c); } while (0)
#endif

/*
 * perf (6.1) decodes neither an immediate ($2) nor a %rip-relative
 * global as a probe argument: it drops the argument.  An argument that
 * is a constant or a global goes through this, which leaves it in a
 * register (an empty asm: no instruction of its own).
 */
#define GORO_PROBE_REG(x)	({ __typeof__(x) _v = (x);		\
				   asm volatile("" : "+r"(_v)); _v; })

#endif /* GORO_PROBES_H */
