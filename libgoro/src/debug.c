// SPDX-License-Identifier: MIT
/*
 * debug.c - GORODEBUG options, the fatal paths, tracebacks, SIGQUIT and
 * schedtrace.
 *
 * The fatal paths must work when the heap is corrupt, a lock is held or
 * the stack is nearly gone: they never allocate, never take sched.lock,
 * and write straight to fd 2.  Tracebacks walk frame pointers (libgoro
 * and its tests keep them), checking every frame against the goroutine's
 * stack bounds, so a broken chain ends the walk instead of faulting.
 * Names come from the executable's own symbol table (static binaries
 * have no dynamic symbols) and dladdr() for shared objects.  Only the
 * first thread to die prints; any other one waits for the exit.
 *
 * Options come from one table, read once from GORODEBUG=k=v,...; a bad
 * value draws one warning and keeps the default, as Go's GODEBUG does.
 */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "runtime.h"
#include "netpoll.h"

struct debugvars debug = {
	.kmod = 1,
	.kmodsysmon = 1,
	.kmodnetpoll = 1,

	.stackguard = 1,
	.timeslice = 10000,
	.gcconc = -1,
	.gcstackmarks = 1,
};

static const struct dbgvar {
	const char *name;
	int32_t *value;
	int32_t min, max;
} dbgvars[] = {
	{ "schedtrace",	 &debug.schedtrace,  0, 1000000 },
	{ "scheddetail", &debug.scheddetail, 0, 1 },
	{ "kmod",	 &debug.kmod,	     0, 1 },
	{ "invariants",	 &debug.invariants,  0, 1 },
	{ "stackguard",	 &debug.stackguard,  0, 1 },
	{ "asyncpreemptoff", &debug.asyncpreemptoff, 0, 1 },
	{ "kmodsysmon",	 &debug.kmodsysmon,  0, 1 },
	{ "kmodnetpoll", &debug.kmodnetpoll, 0, 1 },
	{ "timeslice",	 &debug.timeslice,   100, 10000000 },	/* us */
	{ "handoffprobe", &debug.handoffprobe, 0, 100000 },	/* us */
	{ "gctrace",	 &debug.gctrace,     0, 1 },
	{ "gcstress",	 &debug.gcstress,    0, 1000000 },
	{ "gcconc",	 &debug.gcconc,	     0, 3 },
	{ "gcblack",	 &debug.gcblack,     0, 1 },
	{ "gcstackmarks", &debug.gcstackmarks, 0, 1 },
	{ "netpoll",	 &debug_netpoll,     0, 2 },	/* or by name */
	{ "netpollaccept", &debug_netpollaccept, 0, 1 },
	{ "netpollrecv", &debug_netpollrecv, 0, 1 },
	{ "netpollbufs", &debug_netpollbufs, 8, 32768 },
	{ "netpollcoop", &debug_netpollcoop, 0, 1 },
	{ "netpollshortread", &debug_netpollshortread, 0, 1 },
};

static const char *const waitreasons[WAIT_REASON_MAX] = {
	[WAIT_ZERO]			= "",
	[WAIT_CHAN_RECEIVE]		= "chan receive",
	[WAIT_CHAN_SEND]		= "chan send",
	[WAIT_CHAN_RECEIVE_NIL]		= "chan receive (nil chan)",
	[WAIT_CHAN_SEND_NIL]		= "chan send (nil chan)",
	[WAIT_SELECT]			= "select",
	[WAIT_SELECT_NO_CASES]		= "select (no cases)",
	[WAIT_SYNC_MUTEX_LOCK]		= "sync.Mutex.Lock",
	[WAIT_SYNC_RWMUTEX_RLOCK]	= "sync.RWMutex.RLock",
	[WAIT_SYNC_RWMUTEX_LOCK]	= "sync.RWMutex.Lock",
	[WAIT_SEMACQUIRE]		= "semacquire",
	[WAIT_SYNC_COND_WAIT]		= "sync.Cond.Wait",
	[WAIT_SYNC_WAITGROUP_WAIT]	= "sync.WaitGroup.Wait",
	[WAIT_SLEEP]			= "sleep",
	[WAIT_TIMER_GOROUTINE_IDLE]	= "timer goroutine (idle)",
	[WAIT_IO_WAIT]			= "IO wait",
	[WAIT_GC]			= "GC",
	[WAIT_PREEMPTED]		= "preempted",
	[WAIT_FORCE_GC_IDLE]		= "force gc (idle)",
	[WAIT_FINALIZER_WAIT]		= "finalizer wait",
};

const char *waitreason_string(enum waitreason r)
{
	if ((unsigned)r >= WAIT_REASON_MAX || !waitreasons[r])
		return "unknown wait reason";
	return waitreasons[r];
}

/* ---------------------------------------------------------------------
 * Printing: straight to fd 2, nothing allocated.
 * ------------------------------------------------------------------- */

/*
 * Output is gathered per thread into whole lines, one write(2) each: a
 * scheddetail trace of a thousand goroutines was twelve thousand tiny
 * writes a millisecond, and two threads' lines no longer interleave
 * mid-line.  A print from a signal handler that interrupted a print on
 * its thread (busy) writes straight through; fatal_exit flushes.
 */
static __thread struct {
	char b[256];
	uint32_t n, busy;
} pbuf __attribute__((tls_model("initial-exec")));

static void write_all(const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(2, s, n);

		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

void print_flush(void)
{
	if (pbuf.busy)
		return;
	write_all(pbuf.b, pbuf.n);
	pbuf.n = 0;
}

void print_str(const char *s)
{
	size_t n = strlen(s);

	if (pbuf.busy) {
		write_all(s, n);
		return;
	}
	pbuf.busy = 1;
	while (n) {
		size_t k = sizeof(pbuf.b) - pbuf.n;
		const char *nl;

		if (k > n)
			k = n;
		memcpy(pbuf.b + pbuf.n, s, k);
		nl = memchr(s, '\n', k);
		pbuf.n += (uint32_t)k;
		s += k;
		n -= k;
		if (nl || pbuf.n == sizeof(pbuf.b)) {
			write_all(pbuf.b, pbuf.n);
			pbuf.n = 0;
		}
	}
	pbuf.busy = 0;
}

void print_u64(uint64_t v)
{
	char buf[24];
	int i = sizeof(buf) - 1;

	buf[i] = 0;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	print_str(buf + i);
}

static void print_i64(int64_t v)
{
	if (v < 0) {
		print_str("-");
		print_u64((uint64_t)-v);
	} else {
		print_u64((uint64_t)v);
	}
}

void print_hex(uint64_t v)
{
	char buf[24];
	int i = sizeof(buf) - 1;

	buf[i] = 0;
	do {
		buf[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	buf[--i] = 'x';
	buf[--i] = '0';
	print_str(buf + i);
}

/* ---------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------- */

static void dbg_warn(const char *what, const char *s, size_t n)
{
	char buf[64];

	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, s, n);
	buf[n] = 0;
	print_str("goro: GORODEBUG: ");
	print_str(what);
	print_str(" \"");
	print_str(buf);
	print_str("\", ignored\n");
}

void parsedebugvars(void)
{
	const char *s = getenv("GORODEBUG");

	while (s && *s) {
		const char *end = strchr(s, ',');
		const char *eq;
		size_t len = end ? (size_t)(end - s) : strlen(s);
		bool found = false;

		eq = memchr(s, '=', len);
		for (size_t i = 0; eq && i < sizeof(dbgvars) / sizeof(dbgvars[0]);
		     i++) {
			const struct dbgvar *v = &dbgvars[i];
			char num[24];
			size_t nlen = len - (size_t)(eq + 1 - s);
			char *e;
			long x;

			if (strlen(v->name) != (size_t)(eq - s) ||
			    memcmp(v->name, s, (size_t)(eq - s)))
				continue;
			found = true;
			if (nlen == 0 || nlen >= sizeof(num)) {
				dbg_warn("bad value in", s, len);
				break;
			}
			memcpy(num, eq + 1, nlen);
			num[nlen] = 0;
			x = strtol(num, &e, 10);
			if (*e && v->value == &debug_netpoll &&
			    (x = netpoll_mode_byname(num)) >= 0)
				e = num + nlen;
			if (*e || x < v->min || x > v->max) {
				dbg_warn("bad value in", s, len);
				break;
			}
			*v->value = (int32_t)x;
		}
		if (!found && len)
			dbg_warn("unknown option", s, len);
		s = end ? end + 1 : NULL;
	}
}

/* ---------------------------------------------------------------------
 * Symbols
 * ------------------------------------------------------------------- */

static const Elf64_Sym *exe_syms;
static size_t exe_nsyms;
static const char *exe_strs;
static uintptr_t exe_bias;
static int exe_state;		/* 0 not tried, 1 ok, -1 none */

static void exe_load(void)
{
	const Elf64_Ehdr *eh;
	const Elf64_Shdr *sh;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)getauxval(AT_PHDR);
	size_t phnum = getauxval(AT_PHNUM);
	struct stat st;
	void *map;
	int fd;

	exe_state = -1;
	fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) || st.st_size < (off_t)sizeof(*eh)) {
		close(fd);
		return;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return;
	eh = map;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || !eh->e_shoff ||
	    eh->e_shoff + (size_t)eh->e_shnum * sizeof(*sh) > (size_t)st.st_size)
		return;
	/* The load bias: where AT_PHDR is against where the file says. */
	for (size_t i = 0; ph && i < phnum; i++) {
		if (ph[i].p_type == PT_PHDR) {
			exe_bias = (uintptr_t)ph - ph[i].p_vaddr;
			break;
		}
	}
	sh = (const Elf64_Shdr *)((const char *)map + eh->e_shoff);
	for (int i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum)
			continue;
		exe_syms = (const Elf64_Sym *)((const char *)map + sh[i].sh_offset);
		exe_nsyms = sh[i].sh_size / sizeof(Elf64_Sym);
		exe_strs = (const char *)map + sh[sh[i].sh_link].sh_offset;
		exe_state = 1;
		return;
	}
}

/* Name of the function holding pc and pc's offset in it, or NULL. */
static const char *symbolize(uintptr_t pc, uintptr_t *off)
{
	const Elf64_Sym *best = NULL;
	Dl_info info;

	if (!exe_state)
		exe_load();
	for (size_t i = 0; exe_state == 1 && i < exe_nsyms; i++) {
		const Elf64_Sym *s = &exe_syms[i];
		uintptr_t lo = s->st_value + exe_bias;

		if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || !s->st_value)
			continue;
		if (pc >= lo && pc < lo + (s->st_size ? s->st_size : 1)) {
			best = s;
			break;
		}
	}
	if (best) {
		*off = pc - (best->st_value + exe_bias);
		return exe_strs + best->st_name;
	}
	if (dladdr((void *)pc, &info) && info.dli_sname) {
		*off = pc - (uintptr_t)info.dli_saddr;
		return info.dli_sname;
	}
	return NULL;
}

static void print_frame(uintptr_t pc)
{
	uintptr_t off = 0;
	/* a return address: the call is the byte before */
	const char *name = symbolize(pc - 1, &off);

	print_str(name ? name : "?");
	print_str("(...)\n\t");
	print_hex(pc);
	if (name) {
		print_str(" +");
		print_hex(off + 1);
	}
	print_str("\n");
}

/* Walk the frame chain from (bp, pc) inside [lo, hi). */
static void walk(uintptr_t bp, uintptr_t pc, uintptr_t lo, uintptr_t hi)
{
	for (int n = 0; n < 64; n++) {
		uintptr_t nbp;

		if (!pc)
			return;
		print_frame(pc);
		if (bp < lo || bp + 16 > hi || (bp & 7))
			return;
		nbp = ((uintptr_t *)bp)[0];
		pc = ((uintptr_t *)bp)[1];
		if (nbp && nbp <= bp)
			return;
		bp = nbp;
		if (!bp && pc)
			print_frame(pc), pc = 0;
	}
	print_str("...additional frames elided...\n");
}

static void print_gheader(struct g *gp, const char *state)
{
	print_str("goroutine ");
	print_u64(gp->goid);
	print_str(" [");
	print_str(state);
	print_str("]:\n");
}

static void print_created_by(struct g *gp)
{
	uintptr_t off;
	const char *name;

	if (!gp->gopc || (gp->flags & G_FLAG_MAIN))
		return;
	name = symbolize(gp->gopc - 1, &off);
	print_str("created by ");
	print_str(name ? name : "?");
	print_str("\n\t");
	print_hex(gp->gopc);
	print_str("\n");
}

static const char *gstate(struct g *gp)
{
	switch (readgstatus(gp)) {
	case G_IDLE:
		return "idle";
	case G_RUNNABLE:
		return "runnable";
	case G_RUNNING:
		return "running";
	case G_SYSCALL:
		return "syscall";
	case G_WAITING:
		return waitreason_string(gp->waitreason);
	default:
		return "dead";
	}
}

/* The calling thread's own goroutine (or g0), from here. */
static void traceback_self(struct g *gp)
{
	uintptr_t bp = (uintptr_t)__builtin_frame_address(0);
	uintptr_t lo = gp->stack_lo, hi = gp->stack_hi;

	if (gp->flags & G_FLAG_G0) {
		print_str("goroutine 0 [scheduler]:\n");
		if (!lo)
			lo = bp, hi = bp + (1UL << 20);
	} else {
		print_gheader(gp, "running");
	}
	walk(((uintptr_t *)bp)[0], ((uintptr_t *)bp)[1], lo, hi);
	if (!(gp->flags & G_FLAG_G0))
		print_created_by(gp);
	print_str("\n");
}

/* gp as interrupted by a signal at (bp, pc): the fault's own frames. */
void traceback_ctx(struct g *gp, uintptr_t bp, uintptr_t pc)
{
	print_gheader(gp, "running");
	walk(bp, pc, gp->stack_lo, gp->stack_hi);
	print_created_by(gp);
	print_str("\n");
}

void traceback_g(struct g *gp, bool running)
{
	const uintptr_t *sp = (const uintptr_t *)gp->sched.sp;

	print_gheader(gp, gstate(gp));
	if (running || !sp || (uintptr_t)sp < gp->stack_lo ||
	    (uintptr_t)sp + GOBUF_FRAME > gp->stack_hi)
		print_str("\tgoroutine running on other thread; stack unavailable\n");
	else
		walk(sp[GOBUF_SLOT_RBP], sp[GOBUF_SLOT_PC], gp->stack_lo,
		     gp->stack_hi);
	print_created_by(gp);
	print_str("\n");
}

#define TRACEBACK_MAX	10000

/* Every goroutine but me (NULL: the caller's own first). */
void tracebackothers(struct g *me)
{
	struct g *self = getg();
	struct g *gp;
	size_t shown = 0;

	if (!me && self)
		traceback_self(self);
	me = self;
	for_each_g(gp) {
		uint32_t st = readgstatus(gp);

		if (gp == me || st == G_DEAD || st == G_IDLE)
			continue;
		if (++shown > TRACEBACK_MAX)
			continue;
		traceback_g(gp, st == G_RUNNING || st == G_SYSCALL);
	}
	if (shown > TRACEBACK_MAX) {
		print_str("...additional ");
		print_u64(shown - TRACEBACK_MAX);
		print_str(" goroutines not shown...\n");
	}
}

/* ---------------------------------------------------------------------
 * Fatal paths
 * ------------------------------------------------------------------- */

static uint32_t dying;

/* Only the first thread to die prints; others wait for the exit. */
static void startdying(void)
{
	if (__atomic_exchange_n(&dying, 1, __ATOMIC_ACQ_REL)) {
		for (;;)
			pause();
	}
}

__attribute__((noreturn)) void fatal_exit(void)
{
	print_flush();
	_exit(2);
}

__attribute__((noreturn)) void throw(const char *msg)
{
	startdying();
	print_str("fatal error: ");
	print_str(msg);
	print_str("\n\n");
	tracebackothers(NULL);
	fatal_exit();
}

__attribute__((noreturn)) void gopanic(const char *msg)
{
	struct g *gp = getg();

	startdying();
	print_str("panic: ");
	print_str(msg);
	print_str("\n\n");
	if (gp)
		traceback_self(gp);
	fatal_exit();
}

static void sigquit_handler(int sig, siginfo_t *si, void *uctx)
{
	ucontext_t *uc = uctx;
	struct m *mp = getm();
	struct g *gp = getg();

	(void)sig;
	startdying();
	print_str("SIGQUIT: quit\nPC=");
	print_hex((uint64_t)uc->uc_mcontext.gregs[REG_RIP]);
	print_str(" m=");
	print_i64(mp ? mp->id : -1);
	print_str(" sigcode=");
	print_i64(si->si_code);
	print_str("\n\n");
	/* We run on the signal stack: start from the interrupted frame. */
	if (gp && !(gp->flags & G_FLAG_G0))
		traceback_ctx(gp, uc->uc_mcontext.gregs[REG_RBP],
			      uc->uc_mcontext.gregs[REG_RIP]);
	if (gp)
		tracebackothers(gp);
	else
		tracebackothers(NULL);
	fatal_exit();
}

void install_signals(void)
{
	struct sigaction sa = { 0 };

	sa.sa_sigaction = sigquit_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigfillset(&sa.sa_mask);
	sigaction(SIGQUIT, &sa, NULL);
	if (debug.schedtrace > 0) {
		pthread_t th;

		if (!pthread_create(&th, NULL, schedtrace_thread, NULL))
			pthread_detach(th);
	}
}

/* ---------------------------------------------------------------------
 * schedtrace (Go's format)
 * ------------------------------------------------------------------- */

static int64_t starttime;

static void schedtrace_locked(int32_t procs, bool detailed);

static const char *const pstatus_names[] = {
	"idle", "running", "syscall", "gcstop", "dead",
};

/*
 * Like Go's, under sched.lock (so the sched counters agree), reading the
 * Ps, Ms and Gs racily: it is a snapshot for humans, and TSan is told
 * not to instrument it.
 */
__attribute__((no_sanitize_thread)) void schedtrace(bool detailed)
{
	int32_t procs = __atomic_load_n(&gomaxprocs, __ATOMIC_ACQUIRE);

	lock(&sched.lock);
	schedtrace_locked(procs, detailed);
	unlock(&sched.lock);
}

__attribute__((no_sanitize_thread))
static void schedtrace_locked(int32_t procs, bool detailed)
{
	struct m *mp;

	print_str("SCHED ");
	print_i64((nanotime() - starttime) / 1000000);
	print_str("ms: gomaxprocs=");
	print_i64(procs);
	print_str(" idleprocs=");
	print_i64(__atomic_load_n(&sched.npidle, __ATOMIC_RELAXED));
	print_str(" threads=");
	print_i64(sched.mcount);
	print_str(" spinningthreads=");
	print_i64(__atomic_load_n(&sched.nmspinning, __ATOMIC_RELAXED));
	print_str(" idlethreads=");
	print_i64(sched.nmidle);
	print_str(" runqueue=");
	print_i64(__atomic_load_n(&sched.runqsize, __ATOMIC_RELAXED));
	print_str(" gcwaiting=");
	print_u64(__atomic_load_n(&sched.gcwaiting, __ATOMIC_RELAXED));
	print_str(" goroutines=");
	print_u64(gcount());
	if (!detailed) {
		print_str(" [");
		for (int32_t i = 0; i < procs; i++) {
			if (i)
				print_str(" ");
			print_u64(runqlen(allp[i]));
		}
		print_str("]\n");
		return;
	}
	/* what a stop-the-world still waits for, and Ms that lost their
	 * P to goro.ko's hand-off and wait for one (Go's stopwait) */
	print_str(" stopwait=");
	print_i64(__atomic_load_n(&sched.stopwait, __ATOMIC_RELAXED));
	print_str(" pwait=");
	print_i64(__atomic_load_n(&sched.pwait, __ATOMIC_RELAXED) ?
		  __atomic_load_n(&sched.pwait, __ATOMIC_RELAXED)->id : -1);
	print_str("\n");
	for (int32_t i = 0; i < procs; i++) {
		struct p *pp = allp[i];
		struct m *pm = __atomic_load_n(&pp->m, __ATOMIC_RELAXED);
		uint32_t st = __atomic_load_n(&pp->status, __ATOMIC_RELAXED);

		print_str("  P");
		print_i64(i);
		print_str(": status=");
		print_u64(st);
		print_str("(");
		print_str(pstatus_names[st <= P_DEAD ? st : P_DEAD]);
		print_str(") schedtick=");
		print_u64(pp->schedtick);
		print_str(" m=");
		print_i64(pm ? pm->id : -1);
		print_str(" runqsize=");
		print_u64(runqlen(pp));
		print_str(" gfreecnt=");
		print_i64(pp->gfreecnt);
		print_str(" timerslen=");
		print_i64(pp->ntimers);
		print_str("\n");
	}
	for (mp = __atomic_load_n(&allm, __ATOMIC_ACQUIRE); mp; mp = mp->alllink) {
		struct p *pp = mp->p;
		struct g *gp = mp->curg;

		print_str("  M");
		print_i64(mp->id);
		print_str(": p=");
		print_i64(pp ? pp->id : -1);
		print_str(" curg=");
		print_i64(gp ? (int64_t)gp->goid : -1);
		print_str(" spinning=");
		print_str(mp->spinning ? "true" : "false");
		print_str(" kmodslot=");
		print_i64(mp->slot);
		print_str("\n");
	}
	{
		struct g *gp;
		size_t i = 0;

		for_each_g(gp) {
			uint32_t st = readgstatus(gp);
			struct m *gm = __atomic_load_n(&gp->m, __ATOMIC_RELAXED);

			if (i++ == 1000)
				break;
			if (st == G_DEAD)
				continue;
			print_str("  G");
			print_u64(gp->goid);
			print_str(": status=");
			print_u64(st);
			print_str("(");
			print_str(st == G_WAITING ?
				  waitreason_string(gp->waitreason) : "");
			print_str(") m=");
			print_i64(gm ? gm->id : -1);
			print_str("\n");
		}
	}
}

void *schedtrace_thread(void *arg)
{
	struct timespec ts;
	sigset_t all;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	starttime = nanotime();
	ts.tv_sec = debug.schedtrace / 1000;
	ts.tv_nsec = (long)(debug.schedtrace % 1000) * 1000000;
	for (;;) {
		nanosleep(&ts, NULL);
		if (__atomic_load_n(&sched.exiting, __ATOMIC_ACQUIRE))
			return NULL;
		schedtrace(debug.scheddetail);
	}
}
