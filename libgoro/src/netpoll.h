/* SPDX-License-Identifier: MIT */
/*
 * netpoll.h - the network poller's internal interface (netpoll.c), the
 * two pollers behind it (netpoll_uring.c, netpoll_epoll.c) and the
 * scheduler's hooks (proc.c).  See netpoll.c for the design.
 */
#ifndef GORO_NETPOLL_H
#define GORO_NETPOLL_H

#include <stdbool.h>
#include <stdint.h>

#include "goro.h"
#include "runtime.h"

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

/* A descriptor's token travels through the kernel (epoll data, io_uring
 * user_data), which TSan cannot see: tell it the attach happens before
 * the poller's use. */
static inline void pd_tsan_release(void *pd)
{
#if defined(__SANITIZE_THREAD__)
	__tsan_release(pd);
#endif
	(void)pd;
}

static inline void pd_tsan_acquire(void *pd)
{
#if defined(__SANITIZE_THREAD__)
	__tsan_acquire(pd);
#endif
	(void)pd;
}

/* rg/wg values besides a waiting G (Go's pdNil, pdReady, pdWait). */
#define PD_NIL		((uintptr_t)0)
#define PD_READY	((uintptr_t)1)
#define PD_WAIT		((uintptr_t)2)

/* pd->ref: users in the low bits, PD_CLOSING once goro_close began. */
#define PD_CLOSING	(1ULL << 63)

/* Readiness bits a poller reports to netpollready(). */
#define PD_MODE_R	0x1
#define PD_MODE_W	0x2

/* An event that may leave data behind a short read (netpollready):
 * EOF, an error, urgent data. */
#define PD_MODE_HUP	0x4

/* What an attached fd is, as far as the poller cares (pd->kind). */
#define PD_KIND_FILE		0x0	/* goro_fd_attach: anything pollable */
#define PD_KIND_STREAM		0x1	/* a connected stream socket we made */
#define PD_KIND_LISTENER	0x2	/* a listening socket (goro_net_listen) */
#define PD_KIND_TCP		0x4	/* with either: TCP, not a Unix socket */

/* netpoll_uring's completion queues, under pd->lock (see there). */
#define PD_BID_NONE	0xffffU

/*
 * One attached fd (Go's pollDesc).  Descriptors are never freed: a
 * closed one goes back to a free list with fdseq bumped, so that a
 * poller event still in flight for the old fd finds a tag that no
 * longer matches and is dropped (pd_from_token).
 */
struct polldesc {
	struct polldesc *link;	/* free list, under pdcache lock */
	int fd;
	bool is_sock;		/* write with send(MSG_NOSIGNAL) */
	uint32_t fdseq;		/* atomic: bumped when the fd is closed */
	uint64_t ref;		/* atomic: users | PD_CLOSING */
	uint32_t csema;		/* goro_close waits here for the users */
	uintptr_t rg, wg;	/* atomic: PD_NIL, PD_READY, PD_WAIT or G */
	/* protected by lock (atomically read by pd_checkerr) */
	struct rtlock lock;
	bool closing;
	uintptr_t rseq, wseq;	/* stale-timer protection */
	int64_t rd, wd;		/* deadlines: 0 none, -1 expired */
	struct timer rt, wt;
	/* one reader and one writer at a time (Go's fdMutex r/w locks) */
	struct goro_mutex rmu, wmu;
	int32_t backoff_ms;	/* accept: EMFILE back-off, under rmu */
	uint32_t armed;		/* netpoll_uring: a poll request is live */
	uint8_t kind;		/* PD_KIND_*, set at attach */
	bool rdrained;		/* the last read was short: under rmu */
	bool rdhup;		/* atomic: a PD_MODE_HUP event came */
	/* netpoll_uring's completion paths (netpoll_uring.c), under lock */
	bool compl;		/* this fd uses them (set at attach) */
	uint8_t mstate;		/* the recv or accept multishot: URING_MS_* */
	bool rpoll, wpoll;	/* a one-shot poll for input/output is live */
	bool nobufs;		/* the last recv ran out of buffers */
	int32_t rerr;		/* after the queue: 0, URING_EOF or -errno */
	uint16_t rqhead, rqtail;	/* received buffers, by buffer id */
	uint32_t rqlen;		/* buffers queued */
	uint32_t rqoff;		/* bytes of the head buffer already read */
	int *accq;		/* accepted fds: a ring of acccap */
	uint32_t acchead, acclen, acccap;
};

/* A poller: io_uring or epoll. */
struct netpoll_ops {
	const char *name;
	int (*init)(void);
	int (*open)(struct polldesc *pd);	/* start watching pd->fd */
	void (*close)(struct polldesc *pd);	/* stop, before close(fd) */
	/* Collect ready goroutines into q; deadline 0: do not block, -1:
	 * block until an event or netpoll_break(), else absolute ns. */
	int32_t (*poll)(int64_t deadline, struct gqueue *q);
	void (*wakeup)(void);			/* netpoll_break */
	int (*pollfd)(void);	/* readable when poll would find events */
	/*
	 * Completion paths (io_uring), NULL where the poller has none.
	 * read and accept take what completions left for pd: bytes or an
	 * fd, 0 at EOF, -errno; -EAGAIN: a request is armed, wait for
	 * mode R; -EOPNOTSUPP: nothing armed or queued, do the syscall.
	 * arm: about to wait for mode on pd after EAGAIN: make sure an
	 * event will come (a poller that watches every fd already does).
	 */
	ssize_t (*read)(struct polldesc *pd, void *buf, size_t len);
	int (*accept)(struct polldesc *pd);
	void (*arm)(struct polldesc *pd, int mode);
};

extern const struct netpoll_ops netpoll_uring_ops;
extern const struct netpoll_ops netpoll_epoll_ops;

/* GORODEBUG=netpoll=auto|uring|epoll (debug.c's table). */
enum { NETPOLL_AUTO, NETPOLL_URING, NETPOLL_EPOLL };
extern int32_t debug_netpoll;
/* GORODEBUG=netpollaccept=0, netpollrecv=0, netpollbufs=N: io_uring's
 * multishot accept, its provided-buffer receives and how many buffers
 * (netpoll_uring.c; 1: where the kernel has them); netpollcoop=0:
 * without IORING_SETUP_COOP_TASKRUN. */
extern int32_t debug_netpollaccept, debug_netpollrecv, debug_netpollbufs;
extern int32_t debug_netpollcoop;
/* GORODEBUG=netpollshortread=0: always try the read (net.c). */
extern int32_t debug_netpollshortread;
/* Which of those run, once io_uring is up: bit 0 accept, bit 1 recv;
 * and the provided buffers in the kernel's ring of how many (tests). */
int netpoll_uring_features(void);
void netpoll_uring_bufstat(int32_t *nfree, uint32_t *total);
int32_t netpoll_mode_byname(const char *s);

/* Descriptors are 64-byte aligned: a poller may tag its requests'
 * tokens with the low bits (pd_from_token ignores them). */
#define PD_TOKEN_TAG_MASK	0x3fULL

/* Poller-side helpers (netpoll.c). */
uint64_t pd_token(struct polldesc *pd);
struct polldesc *pd_from_token(uint64_t token);
int32_t netpollready(struct gqueue *q, struct polldesc *pd, int modes);

/* A deadline long past: a blocking poll's duties (epoll: drain a
 * pending break, which a level-triggered bound fd would otherwise keep
 * readable) without its wait.  The poll after a GORO_PARK_IO wake-up. */
#define NETPOLL_NOW	((int64_t)1)

/* The scheduler's side. */
bool netpoll_inited(void);
/* Goroutines parked on I/O: read on every scheduling round (the direct
 * switch included), so a load, not a call. */
extern int32_t netpoll_nwaiters;
static inline int32_t netpoll_waiters(void)
{
	return __atomic_load_n(&netpoll_nwaiters, __ATOMIC_ACQUIRE);
}
int32_t netpoll(int64_t deadline, struct gqueue *q);
void netpoll_break(void);
const char *netpoll_name(void);

/* The I/O API's side (net.c). */
int pd_attach(int fd, struct polldesc **pdp);
int pd_attach_socket(int fd, int kind);
struct polldesc *pd_acquire(int fd);
void pd_release(struct polldesc *pd);
int pd_close(int fd);
int pd_prepare(struct polldesc *pd, int mode);
int pd_wait(struct polldesc *pd, int mode);
ssize_t pd_read(struct polldesc *pd, void *buf, size_t len);
int pd_accept(struct polldesc *pd);
void pd_arm(struct polldesc *pd, int mode);
int pd_set_deadline(struct polldesc *pd, int64_t when, int modes);

#endif /* GORO_NETPOLL_H */
