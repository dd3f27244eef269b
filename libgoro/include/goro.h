/* SPDX-License-Identifier: MIT */
/*
 * goro.h - goroutines, channels, timers and sync for C.
 *
 * The public API of libgoro.  Everything else in libgoro is internal.
 * Names follow Go: goro_main is the program's main goroutine, go() spawns
 * one, channels and select behave as Go's.  Functions that can fail
 * return a negative errno value (liburing style) unless the comment says
 * otherwise.  Misuse that Go turns into a panic or a fatal error (unlock
 * of an unlocked mutex, a negative WaitGroup counter, all goroutines
 * asleep) prints Go's message with a goroutine traceback and exits with
 * status 2, as Go does.
 *
 * Synchronisation objects (goro_mutex, goro_waitgroup, ...) are plain
 * structs whose all-zero value is ready to use, as Go's zero values are:
 * declare them static, embed them, or memset them to zero.  Their fields
 * are private.
 */
#ifndef GORO_H
#define GORO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------
 * Runtime
 * ------------------------------------------------------------------- */

/* Attributes of a new goroutine; NULL means the defaults. */
struct goro_attr {
	size_t stack_size;	/* bytes of stack, 0 = default (see goro_spawn) */
	uint64_t reserved[3];	/* must be zero */
};

/*
 * Start the runtime on GOMAXPROCS Ps (environment GOMAXPROCS, default the
 * number of CPUs) and run fn(arg) as the main goroutine.  Returns when fn
 * returns, as Go's main does: goroutines still running are abandoned.
 * Returns 0, or -errno if the runtime could not start.  Called once per
 * process.
 */
int goro_main(void (*fn)(void *arg), void *arg);

/*
 * Start fn(arg) in a new goroutine.  The default stack is 256 KiB of
 * address space, committed lazily a page at a time; attr->stack_size
 * asks for another size (rounded up to pages, at least 16 KiB).
 * Returns 0, -EINVAL for a bad attribute, -ENOMEM.
 */
int goro_spawn(void (*fn)(void *arg), void *arg, const struct goro_attr *attr);
#define go(fn, arg)	goro_spawn((fn), (arg), NULL)

/* Let other goroutines run; the caller stays runnable (runtime.Gosched). */
void goro_yield(void);

/* End the calling goroutine (runtime.Goexit).  In the main goroutine it
 * waits for the others and then reports deadlock, as Go does. */
__attribute__((noreturn)) void goro_exit(void);

/* The calling goroutine's id (main is 1), 0 outside any goroutine. */
uint64_t goro_id(void);

/* Goroutines that exist now, but for the runtime's own (the collector,
 * finalizer and signal goroutines), as runtime.NumGoroutine. */
int goro_num_goroutine(void);

/*
 * Set GOMAXPROCS to n (stopping the world as Go's procresize does) and
 * return the previous value; n < 1 only returns the current value.
 */
int goro_set_maxprocs(int n);

/* ---------------------------------------------------------------------
 * Time
 * ------------------------------------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t goro_nanotime(void);

/* Block the calling goroutine (never its thread) for at least ns. */
void goro_sleep(int64_t ns);

/*
 * Timers and tickers (Go's time.Timer, time.Ticker, time.After).  Each
 * has a channel of capacity 1 that receives an int64_t: the
 * goro_nanotime() at which it fired.  A ticker drops ticks its reader is
 * too slow for.  As in Go 1.23, once goro_timer_stop/reset or
 * goro_ticker_stop/reset returns, no value from an earlier arming can be
 * received.  Creating or re-arming one needs a goroutine (it goes on the
 * caller's P); NULL means out of memory.  Like channels they are freed
 * explicitly, not collected: goro_timer_free/goro_ticker_free (the channel
 * goes with it), and goro_chan_free() on a goro_after() channel, which
 * also stops its timer.
 */
struct goro_timer;
struct goro_ticker;

/* Fire once, ns from now. */
struct goro_timer *goro_timer_new(int64_t ns);
struct goro_chan *goro_timer_chan(struct goro_timer *t);
/* Stop; true if it had not fired yet (Go's Timer.Stop). */
bool goro_timer_stop(struct goro_timer *t);
/* Stop and fire ns from now; true if it had been pending. */
bool goro_timer_reset(struct goro_timer *t, int64_t ns);
void goro_timer_free(struct goro_timer *t);

/* A channel that receives the time once, ns from now (time.After). */
struct goro_chan *goro_after(int64_t ns);

/* Tick every period ns (> 0, else panic), first at now + period. */
struct goro_ticker *goro_ticker_new(int64_t period);
struct goro_chan *goro_ticker_chan(struct goro_ticker *t);
void goro_ticker_reset(struct goro_ticker *t, int64_t period);
void goro_ticker_stop(struct goro_ticker *t);
void goro_ticker_free(struct goro_ticker *t);

/* ---------------------------------------------------------------------
 * Sync: zero values are unlocked / empty, as in Go.
 * ------------------------------------------------------------------- */

/* Semaphores keyed by address, FIFO.  acquire waits until *addr > 0 and
 * decrements it; release increments it and wakes a waiter, handing the
 * caller's time slice straight to it when handoff is true. */
void goro_sema_acquire(uint32_t *addr);
void goro_sema_release(uint32_t *addr, bool handoff);

/* sync.Mutex, with Go's normal and starvation (1 ms) modes. */
struct goro_mutex {
	int32_t state;
	uint32_t sema;
};
void goro_mutex_lock(struct goro_mutex *m);
bool goro_mutex_trylock(struct goro_mutex *m);
void goro_mutex_unlock(struct goro_mutex *m);

/* sync.RWMutex: writers are preferred over new readers. */
struct goro_rwmutex {
	struct goro_mutex w;
	uint32_t writer_sem;
	uint32_t reader_sem;
	int32_t reader_count;
	int32_t reader_wait;
};
void goro_rwmutex_lock(struct goro_rwmutex *rw);
void goro_rwmutex_unlock(struct goro_rwmutex *rw);
void goro_rwmutex_rlock(struct goro_rwmutex *rw);
void goro_rwmutex_runlock(struct goro_rwmutex *rw);

/* sync.WaitGroup. */
struct goro_waitgroup {
	uint64_t state;		/* counter in the high 32 bits, waiters low */
	uint32_t sema;
	uint32_t pad;
};
void goro_waitgroup_add(struct goro_waitgroup *wg, int delta);
void goro_waitgroup_done(struct goro_waitgroup *wg);
void goro_waitgroup_wait(struct goro_waitgroup *wg);

/* sync.Once: fn(arg) runs once; every caller returns after it ran. */
struct goro_once {
	uint32_t done;
	struct goro_mutex m;
};
void goro_once_do(struct goro_once *o, void (*fn)(void *arg), void *arg);

/* sync.Cond over a goro_mutex, which goro_cond_wait unlocks while it
 * waits and locks again before it returns. */
struct goro_cond {
	struct goro_mutex *l;	/* set by goro_cond_init, or directly */
	uint32_t wait;		/* ticket of the next waiter */
	uint32_t notify;	/* ticket of the next to be notified */
	uintptr_t lock;
	void *head;
	void *tail;
};
void goro_cond_init(struct goro_cond *c, struct goro_mutex *l);
void goro_cond_wait(struct goro_cond *c);
void goro_cond_signal(struct goro_cond *c);
void goro_cond_broadcast(struct goro_cond *c);

/* ---------------------------------------------------------------------
 * Channels and select: Go's semantics.  A NULL channel is Go's nil
 * channel: sends and receives on it block forever, select ignores it.
 * ------------------------------------------------------------------- */

struct goro_chan;

/*
 * Make a channel of elements of elem_size bytes (0 allowed, no upper
 * limit) buffering cap of them (0: unbuffered).  Returns NULL when the
 * memory cannot be had.  The channel comes from malloc, not from the
 * collected heap (the collector scans its buffer for pointers but never
 * frees it): release it with goro_chan_free.
 */
struct goro_chan *goro_chan_make(size_t elem_size, size_t cap);

/*
 * Free a channel that no goroutine waits on or will use again.  Freeing
 * it as soon as its last operation is seen (the last value received)
 * is safe: an operation still finishing on another thread is waited for.
 */
void goro_chan_free(struct goro_chan *ch);

/*
 * Send *v (elem_size bytes are copied), blocking until a receiver or
 * buffer room takes it.  Panics "send on closed channel" if ch is or
 * becomes closed while the sender waits.
 */
void goro_chan_send(struct goro_chan *ch, const void *v);

/*
 * Receive into *v (v may be NULL to discard).  Returns true when a value
 * came; false when ch is closed and drained, with *v zeroed (Go's
 * v, ok := <-ch).
 */
bool goro_chan_recv(struct goro_chan *ch, void *v);

/* Send without blocking: true if sent, false if it would block (a NULL
 * channel, a full buffer, no waiting receiver).  Panics on a closed
 * channel, as a select with a default case does in Go. */
bool goro_chan_try_send(struct goro_chan *ch, const void *v);

/* Receive without blocking: 1 received, 0 would block, -EPIPE closed and
 * drained (*v zeroed). */
int goro_chan_try_recv(struct goro_chan *ch, void *v);

/* Close ch: waiting receivers get the zero value and false, waiting
 * senders panic.  Panics "close of closed channel", "close of nil
 * channel". */
void goro_chan_close(struct goro_chan *ch);

/* Elements buffered now, and the capacity; 0 for a NULL channel. */
size_t goro_chan_len(struct goro_chan *ch);
size_t goro_chan_cap(struct goro_chan *ch);

#define GORO_SELECT_SEND	1
#define GORO_SELECT_RECV	2

/* One case of goro_select. */
struct goro_select_case {
	struct goro_chan *ch;	/* NULL: the case is never chosen */
	void *val;		/* SEND: value to send; RECV: where to put the
				 * value, or NULL to discard it */
	uint32_t dir;		/* GORO_SELECT_SEND or GORO_SELECT_RECV */
	uint32_t ok;		/* out, chosen case only: 1 if a RECV got a
				 * value (0: closed, *val zeroed), 1 for SEND */
};

/* goro_select flags */
#define GORO_SELECT_NONBLOCK	0x1	/* Go's default: case */

/*
 * Go's select: wait until one of the n cases can proceed, perform it and
 * return its index; when several can, the choice is uniformly random.
 * With GORO_SELECT_NONBLOCK, return -EAGAIN at once if none can.  A
 * SEND case on a closed channel panics "send on closed channel".
 * n == 0 (or all channels NULL) without NONBLOCK blocks forever.
 * Returns -EINVAL for an unknown flag or dir, n < 0 or n > 65536,
 * -ENOMEM if more than 16 cases need memory that cannot be had.
 */
int goro_select(struct goro_select_case *cases, int n, unsigned int flags);

/* ---------------------------------------------------------------------
 * Preemption, blocking calls and signals
 * ------------------------------------------------------------------- */

/*
 * Declare [start, end) as code where a goroutine may be preempted
 * asynchronously (by signal) when it overruns its 10 ms time slice.
 * Such code must keep no thread-bound state across instructions: no
 * libc internals, no cached addresses of __thread variables.  The
 * default, taken at goro_main unless this was called before, is the
 * main executable's text minus libgoro's when the executable is
 * dynamically linked, and nothing when it is static (libc is in it).
 * goro_preempt_allow_text(NULL, NULL) clears every range.  Returns 0,
 * -EINVAL for an empty or half-NULL range, -ENOSPC beyond 32 ranges.
 */
int goro_preempt_allow_text(const void *start, const void *end);

/*
 * Bracket a call that may block in the kernel where the runtime cannot
 * see it (Go's entersyscall/exitsyscall): between them the goroutine's
 * P may be handed to another thread, so other goroutines keep running.
 * Call no other goro_* function in between.  No-ops outside goroutines.
 */
void goro_syscall_enter(void);
void goro_syscall_exit(void);

/*
 * Go's signal.Notify: deliver signo to ch as an int (the signal number)
 * each time the process gets it; a full channel drops it (use a buffer).
 * Call from a goroutine.  Returns 0, -EINVAL (NULL ch; SIGKILL, SIGSTOP
 * and synchronous fault signals), -EPERM outside a goroutine, -ENOSPC.
 * The preemption signal (SIGURG) may be notified too.  Once a signal is
 * notified, deadlock detection stays off, as in Go.
 */
int goro_signal_notify(struct goro_chan *ch, int signo);

/* Go's signal.Stop: no more signals to ch once it returns; signals no
 * channel wants any longer get their default action back. */
void goro_signal_stop(struct goro_chan *ch);

/* ---------------------------------------------------------------------
 * Memory: the garbage-collected heap
 *
 * Objects from goro_alloc live while a pointer to them (or into them) is
 * in a root: a goroutine's stack or saved registers, the data or bss of
 * the program or of a shared object, a channel buffer, a queued timer,
 * or a range given to goro_add_root.  Memory from malloc or mmap is not
 * scanned: a pointer kept only there does not keep an object alive, nor
 * does one on the stack of a thread that is not a goroutine.
 * ------------------------------------------------------------------- */

/* A new zeroed object of size bytes that may hold pointers (scanned),
 * or NULL when out of memory.  Callable from any thread; collections
 * start only from goroutines. */
void *goro_alloc(size_t size);

/* Like goro_alloc, for an object that holds no pointer to GC objects:
 * the collector never scans it (and packs tiny ones together). */
void *goro_alloc_noscan(size_t size);

/* Collect now and return when the cycle is done (runtime.GC).  Returns
 * 0, or -EPERM outside a goroutine. */
int goro_gc(void);

/* GOGC: collect when the heap grows by percent over the live heap after
 * the last collection; negative turns collections off (except under the
 * memory limit).  Returns the previous setting.  Environment GOGC. */
int goro_set_gc_percent(int percent);

/* GOMEMLIMIT: a soft limit in bytes on the heap; negative only returns
 * the current limit (INT64_MAX: none).  Returns the previous limit. */
int64_t goro_set_memory_limit(int64_t bytes);

/* Run fn(p) on the finalizer goroutine once p's object is unreachable
 * (runtime.SetFinalizer).  p must point into a goro_alloc object; fn
 * NULL removes the finalizer.  0, -EINVAL (not a heap object), -ENOENT
 * (no finalizer to remove), -ENOMEM.  The object is freed by the first
 * collection after fn returns, unless fn made it reachable again. */
int goro_set_finalizer(void *p, void (*fn)(void *p));

/* Scan [p, p + len) as a root from now on (memory from malloc, say);
 * goro_remove_root(p) stops it.  0, -EINVAL, -ENOMEM / -ENOENT. */
int goro_add_root(void *p, size_t len);
int goro_remove_root(void *p);

/* Go's runtime.MemStats, in part.  Byte counts unless stated. */
struct goro_memstats {
	uint64_t heap_alloc;	/* allocated and not yet freed */
	uint64_t heap_sys;	/* heap address space mapped */
	uint64_t heap_idle;	/* in no span in use */
	uint64_t heap_inuse;	/* in spans in use */
	uint64_t heap_released;	/* idle and given back to the OS */
	uint64_t heap_objects;	/* objects allocated and not yet freed */
	uint64_t total_alloc;	/* cumulative bytes allocated */
	uint64_t mallocs;	/* cumulative objects allocated */
	uint64_t frees;		/* cumulative objects freed */
	uint64_t next_gc;	/* heap_alloc-ish size of the next collection */
	uint64_t last_gc_unix_ns; /* end of the last collection, wall clock */
	uint64_t pause_total_ns;
	uint64_t pause_ns[256];	/* pause of cycle n at [(n - 1) % 256] */
	uint32_t num_gc;
	uint32_t num_forced_gc;	/* by goro_gc */
	/* share of the CPU time GOMAXPROCS Ps had since the start that the
	 * collector used (marking, assists, pauses; not the sweep), 0-1 */
	double gc_cpu_fraction;
	uint64_t reserved[7];
};

/* A snapshot of the heap's statistics; callable from any thread. */
void goro_read_memstats(struct goro_memstats *st);

/* ---------------------------------------------------------------------
 * I/O: a goroutine blocks, never its thread
 * ------------------------------------------------------------------- */

/*
 * Attach fd to the network poller and make it non-blocking; the calls
 * below then park the calling goroutine instead of its thread.  For fds
 * made elsewhere (sockets, pipes, eventfds, ttys); goro_net_listen,
 * goro_net_dial and goro_accept return attached fds.  Detach with
 * goro_close.  Returns 0, -EEXIST if attached already, -EBADF, -ENOMEM,
 * -errno of fcntl or of the poller.
 */
int goro_fd_attach(int fd);

/*
 * A listening stream socket, attached.  addr: "tcp:HOST:PORT" (IPv4 or
 * IPv6 by the literal, "tcp:[::1]:8080"), "tcp4:..." or "tcp6:..." for
 * one family, "unix:/path" or "unix:@abstract".  HOST is numeric or
 * "localhost" (no DNS); empty means every address of IPv4 ("tcp:",
 * "tcp4:") or IPv6 ("tcp6:"); PORT 0 an ephemeral port.  Returns the fd
 * or -EINVAL (bad address), -errno of socket/bind/listen.
 */
int goro_net_listen(const char *addr);

/* A connected stream socket, attached (addr as for goro_net_listen; an
 * empty HOST is loopback).  TCP sockets get TCP_NODELAY, as in Go.
 * Returns the fd or -errno (-ECONNREFUSED, -ETIMEDOUT, ...). */
int goro_net_dial(const char *addr);

/* accept(2) on an attached listener: the new fd comes attached and
 * non-blocking.  addr/addrlen may be NULL.  -EMFILE/-ENFILE come after
 * a back-off sleep (5 ms doubling to 100 ms), so a loop does not spin. */
int goro_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);

/* connect(2), waiting for the handshake: 0 or -errno. */
int goro_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);

/* read(2): bytes read, 0 at end of file, or -errno. */
ssize_t goro_read(int fd, void *buf, size_t len);

/*
 * Write all of buf, waiting as needed: returns len, or -errno if nothing
 * was written; after a partial write the count, with the error left for
 * the next call.  Sockets are written with MSG_NOSIGNAL: a reset peer is
 * -EPIPE, never SIGPIPE.
 */
ssize_t goro_write(int fd, const void *buf, size_t len);

/*
 * Close an attached fd: goroutines blocked in it return -ECANCELED,
 * calls that start afterwards -EBADF; the fd is closed once the last
 * call using it has returned.  Returns 0, -EBADF (not attached, or
 * closed already) or close(2)'s error.  Call it from a goroutine.
 */
int goro_close(int fd);

#define GORO_DEADLINE_READ	0x1	/* goro_read, goro_accept */
#define GORO_DEADLINE_WRITE	0x2	/* goro_write, goro_connect */

/*
 * Deadline for the reads and/or writes of fd: absolute goro_nanotime()
 * nanoseconds, 0 for none.  A call blocked past it, or started after it,
 * returns -ETIMEDOUT until another deadline is set (Go's SetDeadline).
 * Returns 0, -EINVAL (bad flags or when < 0), -EBADF.
 */
int goro_set_deadline(int fd, int64_t when, unsigned int flags);

#ifdef __cplusplus
}
#endif

#endif /* GORO_H */
