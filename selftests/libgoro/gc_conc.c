// SPDX-License-Identifier: MIT
/*
 * gc_conc: the concurrent mark against mutators that hide objects from
 * it.  Two goroutines (on two Ps when there are two) keep an old graph
 * of holders that the collector scans early in each mark, and over and
 * over store a fresh object (with a fresh child) into a holder, move a
 * holder's kid into another holder, or move it onto their own stack
 * (clearing the holder's slot) and later back into another holder,
 * each time dropping the only other reference: the lost-object race of
 * a mark without a barrier.  A third goroutine forces collections one after another
 * meanwhile, and an old ballast list keeps each mark long enough for
 * the mutators to run inside it.
 *
 * The fresh object is allocated after the mark began and is reachable
 * only through a holder that was already scanned: only the final
 * pause's rescan of the written heap pages finds it.  So without that
 * rescan this test fails: checksums break (the object is freed and its
 * slot zeroed or reused), or its finalizer runs while it is still
 * linked ("alive" set), or ASan reports the use after free.
 *
 * It runs four ways: by default (the concurrent mark with userfaultfd's
 * write-protect where the kernel has it - 6.7+: this host and the VM's
 * 6.12 - and the stop-the-world mark otherwise), with gcblack=1
 * (allocation black during the mark), with gcconc=3 (soft-dirty bits
 * where the kernel has them - the VM's 6.1 - and stop-the-world
 * otherwise) and with gcconc=2 (a concurrent mark that rescans every
 * heap page), so that the concurrent machinery runs on any kernel;
 * and once more by default with the graph beyond 40 MiB of
 * pointer-free heap, which the pause's walk skips within one claim.
 * The parked_stacks tests add a thousand goroutines that hold fresh
 * objects only in their frames, fed through a channel while parked
 * (see keeper, below).
 */
#include "kselftest_harness.h"
#include "sched_test.h"

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

#define NHOLD		(TSAN ? 512 : 4096)
#define NKIDS		4
#define NBALLAST	(TSAN ? 20000 : 300000)
#define RUN_NS		(SANITIZED ? 1500 : 1000) * 1000 * 1000LL
/* keepers, and as many idlers; under TSan each new goroutine's fiber
 * costs milliseconds (its thread context), and 2 048 of them took 10 s */
#define NKEEPERS	(TSAN ? 256 : 1024)

struct cnode {
	uint64_t id;
	uint64_t check;
	uint32_t alive;		/* atomic: linked from a holder */
	uint32_t pad;
	struct cnode *sub;	/* a fresh child, allocated just before */
	uint64_t tail[5];
};

struct holder {
	uint64_t id;
	struct cnode *kid[NKIDS];
	uint64_t check;
};

struct bnode {
	struct bnode *next;
	uint64_t v;
};

struct mut {
	int idx;
	struct holder **hold;	/* goro_alloc'd, old */
	long iters, bad, checked, made, nfin;
	long progress;		/* atomic: iters, for conc_main's loop */
	struct goro_waitgroup *wg;
};

static struct bnode *ballast;		/* a global: a root */
static long nhold = NHOLD;
static struct mut muts[2];
static long fin_ran, fin_bad;		/* atomic */
static bool stop;			/* atomic */
static struct goro_memstats st0, st1;
static long ballast_bad;
/* mutate_across_gap: a small object that may hold pointers, then
 * gap_bytes of pointer-free heap, then the graph, so that one claim of
 * the pause's walk holds a run to walk, granules to skip, and the run
 * of the graph (globals: roots that keep both alive) */
static size_t gap_bytes;
static void *gap_head, *gap;

static void cnode_fin(void *p)
{
	struct cnode *c = p;

	__atomic_add_fetch(&fin_ran, 1, __ATOMIC_RELAXED);
	/* unreachable, says the collector: then nothing links it */
	if (__atomic_load_n(&c->alive, __ATOMIC_RELAXED) ||
	    c->check != mix(c->id))
		__atomic_add_fetch(&fin_bad, 1, __ATOMIC_RELAXED);
}

static struct cnode *cnode_new(uint64_t id)
{
	struct cnode *c = goro_alloc(sizeof(*c));
	struct cnode *s = goro_alloc(sizeof(*s));

	s->id = ~id;
	s->check = mix(~id);
	for (int i = 0; i < 5; i++)
		s->tail[i] = mix(~id + (uint64_t)i);
	c->id = id;
	c->check = mix(id);
	for (int i = 0; i < 5; i++)
		c->tail[i] = mix(id + (uint64_t)i);
	c->sub = s;
	return c;
}

/* A bad node, said on stderr (the first few): enough to tell a node
 * freed and reused, or zeroed, from its child lost, and where. */
static void cnode_report(const struct cnode *c, const char *where)
{
	static int said;	/* atomic */
	const struct cnode *s = c->sub;
	struct goro_memstats st;

	if (__atomic_fetch_add(&said, 1, __ATOMIC_RELAXED) >= 8)
		return;
	fprintf(stderr, "# bad node %p (%s): id %#llx check %s alive %u; "
		"sub %p", (void *)c, where, (unsigned long long)c->id,
		c->check == mix(c->id) ? "ok" : "BAD",
		__atomic_load_n(&c->alive, __ATOMIC_RELAXED), (void *)s);
	if (s)
		fprintf(stderr, ": id %#llx check %s (want id %#llx)",
			(unsigned long long)s->id,
			s->check == mix(s->id) ? "ok" : "BAD",
			(unsigned long long)~c->id);
	goro_read_memstats(&st);
	fprintf(stderr, "; %u collections so far\n", st.num_gc);
}

static bool cnode_sound(const struct cnode *c)
{
	const struct cnode *s = c->sub;

	if (c->check != mix(c->id) || !s || s->check != mix(s->id) ||
	    s->id != ~c->id)
		return false;
	for (int i = 0; i < 5; i++)
		if (c->tail[i] != mix(c->id + (uint64_t)i) ||
		    s->tail[i] != mix(s->id + (uint64_t)i))
			return false;
	return true;
}

static bool cnode_check(const struct cnode *c, const char *where)
{
	if (cnode_sound(c))
		return true;
	cnode_report(c, where);
	return false;
}

#define cnode_ok(c)	cnode_check((c), __func__)

static long verify_holder(const struct holder *h, long *checked)
{
	long bad = h->check != mix(h->id);

	for (int k = 0; k < NKIDS; k++) {
		if (!h->kid[k])
			continue;
		bad += !cnode_ok(h->kid[k]);
		(*checked)++;
	}
	return bad;
}

static void drop(struct cnode *c)
{
	if (c)
		__atomic_store_n(&c->alive, 0, __ATOMIC_RELAXED);
}

#define NSTASH	8

static void mutator(void *arg)
{
	struct mut *m = arg;
	uint64_t r = (uint64_t)m->idx + 7, id = (uint64_t)(m->idx + 1) << 40;
	/* kids held only here, on this goroutine's stack, for a while */
	struct cnode *volatile stash[NSTASH] = { NULL };

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		struct holder *a, *b;
		int ka, kb, ks;

		r = mix(r + 0x9e37);
		a = m->hold[r % nhold];
		b = m->hold[(r >> 20) % nhold];
		ka = (int)(r >> 40) % NKIDS;
		kb = (int)(r >> 50) % NKIDS;
		ks = (int)(r >> 56) % NSTASH;
		if ((r & (3ULL << 61)) == (3ULL << 61)) {
			/* hide: b's kid lives only on our stack, then back
			 * into a: a scanned holder loses its only pointer
			 * while it is marked, and another gets it later */
			struct cnode *c = stash[ks];

			if (!c) {
				stash[ks] = b->kid[kb];
				b->kid[kb] = NULL;
			} else {
				stash[ks] = NULL;
				if (!cnode_ok(c))
					m->bad++;
				drop(a->kid[ka]);
				a->kid[ka] = c;
			}
		} else if (r & (1ULL << 60)) {
			/* a fresh object into an old, scanned holder */
			struct cnode *c = cnode_new(++id);

			__atomic_store_n(&c->alive, 1, __ATOMIC_RELAXED);
			/* every 64th: a finalizer proves when it is freed */
			if (!(++m->made & 63) &&
			    goro_set_finalizer(c, cnode_fin) == 0)
				m->nfin++;
			drop(a->kid[ka]);
			a->kid[ka] = c;
		} else if (a != b || ka != kb) {
			/* move: b's kid now lives only in a */
			drop(a->kid[ka]);
			a->kid[ka] = b->kid[kb];
			b->kid[kb] = NULL;
		}
		if (!(++m->iters & 1023)) {
			m->bad += verify_holder(m->hold[(r >> 8) % nhold],
						&m->checked);
			__atomic_store_n(&m->progress, m->iters,
					 __ATOMIC_RELAXED);
		}
		if (!(m->iters & 4095))
			goro_yield();
	}
	for (int i = 0; i < NSTASH; i++)
		if (stash[i]) {
			m->bad += !cnode_ok(stash[i]);
			drop(stash[i]);
		}
	for (int i = 0; i < nhold; i++)
		m->bad += verify_holder(m->hold[i], &m->checked);
	goro_waitgroup_done(m->wg);
}

/*
 * Keepers: goroutines that hold a fresh object only in their frames
 * while they park and run, over and over, during the marks.  Each
 * waits on an unbuffered channel, so the feeder writes the object into
 * its parked frame (then readies it); it then sleeps a few times
 * holding it.  The pause leaves out the stacks a mark read parked and
 * that have not run since (mgc.c, "Parked stacks"): a keeper whose
 * stack was read before it got its object, or before it last ran, must
 * be read again, or its object, white and new, is freed under it.
 */
#define KEEP_BURST	32	/* keepers fed in a row */
static int nkeepers;
static size_t keeper_stack;	/* bytes; 0: the default */
static struct goro_chan *feed;
static struct goro_chan *idle;	/* idlers wait on it until the end */
static long keep_got, keep_bad, keep_fin;	/* atomic */
static uint32_t keep_gc_first, keep_gc_last;	/* cycles with every keeper */

static void keeper(void *arg)
{
	struct goro_waitgroup *wg = arg;
	struct cnode *c;

	while (goro_chan_recv(feed, &c)) {
		struct cnode *volatile held = c;

		c = NULL;
		for (int i = 0; i < 3; i++)
			goro_sleep(50 * 1000);
		if (!cnode_ok(held))
			__atomic_add_fetch(&keep_bad, 1, __ATOMIC_RELAXED);
		drop(held);
		held = NULL;
		__atomic_add_fetch(&keep_got, 1, __ATOMIC_RELAXED);
	}
	goro_waitgroup_done(wg);
}

/* As many as the keepers, parked from start to end and never fed: the
 * pauses leave them out however long a mark takes (under emulation a
 * mark is long enough to feed every keeper). */
static void idler(void *arg)
{
	struct cnode *c;

	while (goro_chan_recv(idle, &c))
		;
	goro_waitgroup_done(arg);
}

static void feeder(void *arg)
{
	struct goro_waitgroup *wg = arg;
	uint64_t id = 3ULL << 40;

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		struct cnode *c = cnode_new(++id);
		int64_t t;

		__atomic_store_n(&c->alive, 1, __ATOMIC_RELAXED);
		if (!(id & 15) && goro_set_finalizer(c, cnode_fin) == 0)
			__atomic_add_fetch(&keep_fin, 1, __ATOMIC_RELAXED);
		goro_chan_send(feed, &c);
		if (id % KEEP_BURST)
			continue;
		/* hold this P a while: the keepers just fed wait on its
		 * queue, readied, not yet run, when a pause comes; the
		 * others (fed in turn, first parked first) wait parked,
		 * most since before the mark began */
		t = goro_nanotime();
		while (goro_nanotime() - t < 1000 * 1000)
			;
	}
	goro_chan_close(feed);
	goro_waitgroup_done(wg);
}

static void collector(void *arg)
{
	/* a short gap: with a stop-the-world mark (no soft-dirty), back
	 * to back collections would leave the mutators almost no time */
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		if (goro_gc())
			break;
		goro_sleep(2 * 1000 * 1000);
	}
	goro_waitgroup_done(arg);
}

/* what run() asserts of the mutators and the frees, seen so far */
static bool enough_work(const struct goro_memstats *st)
{
	for (int i = 0; i < 2; i++)
		if (__atomic_load_n(&muts[i].progress, __ATOMIC_RELAXED) <=
		    2 * 10000)
			return false;
	return st->frees > st0.frees + 2 * 10000;
}

static void setup(struct mut *m, int idx, struct goro_waitgroup *wg)
{
	m->idx = idx;
	m->wg = wg;
	m->hold = goro_alloc(nhold * sizeof(*m->hold));
	for (int i = 0; i < nhold; i++) {
		struct holder *h = goro_alloc(sizeof(*h));

		h->id = (uint64_t)idx << 32 | (uint64_t)i;
		h->check = mix(h->id);
		m->hold[i] = h;
	}
}

static void conc_main(void *arg)
{
	struct goro_waitgroup wg = { 0 }, cwg = { 0 };
	int64_t t0;

	(void)arg;
	if (gap_bytes) {
		gap_head = goro_alloc(64);
		gap = goro_alloc_noscan(gap_bytes);
	}
	for (long i = 0; i < NBALLAST; i++) {
		struct bnode *b = goro_alloc(sizeof(*b));

		b->v = mix((uint64_t)i);
		b->next = ballast;
		ballast = b;
	}
	goro_waitgroup_add(&wg, 2);
	for (int i = 0; i < 2; i++)
		setup(&muts[i], i, &wg);
	goro_gc();		/* holders and ballast are old from here */
	goro_read_memstats(&st0);
	if (nkeepers) {
		feed = goro_chan_make(sizeof(struct cnode *), 0);
		idle = goro_chan_make(sizeof(struct cnode *), 0);
		goro_waitgroup_add(&cwg, 2 * nkeepers + 1);
		struct goro_attr ka = { .stack_size = keeper_stack };

		for (int i = 0; i < nkeepers; i++)
			if (goro_spawn(keeper, &cwg, &ka) ||
			    goro_spawn(idler, &cwg, &ka))
				abort();
		go(feeder, &cwg);
		goro_read_memstats(&st1);
		/* a cycle under way may stop before some keeper first ran */
		keep_gc_first = st1.num_gc + 2;
	}
	/* after the keepers: a stop-the-world cycle (TSan builds) waits
	 * for conc_main to yield, and goro_spawn is where it does, so
	 * cycles back to back would let it make one keeper per cycle */
	goro_waitgroup_add(&cwg, 1);
	go(collector, &cwg);
	for (int i = 0; i < 2; i++)
		go(mutator, &muts[i]);
	/* at least RUN_NS, 6 collections and the work run() asserts (slow
	 * machines, emulators, a KASAN kernel's write-protect faults), at
	 * most a minute */
	t0 = goro_nanotime();
	for (;;) {
		int64_t el = goro_nanotime() - t0;

		goro_read_memstats(&st1);
		if ((el >= RUN_NS && st1.num_gc - st0.num_gc >= 6 &&
		     enough_work(&st1)) ||
		    el >= 60 * 1000 * 1000 * 1000LL)
			break;
		goro_sleep(10 * 1000 * 1000);
	}
	keep_gc_last = st1.num_gc;	/* those ended before the stop */
	__atomic_store_n(&stop, true, __ATOMIC_RELAXED);
	if (idle)
		goro_chan_close(idle);
	goro_waitgroup_wait(&wg);
	goro_waitgroup_wait(&cwg);
	goro_read_memstats(&st1);
	/* the ballast was never touched: every node intact */
	for (long i = NBALLAST - 1; ballast; ballast = ballast->next, i--)
		ballast_bad += ballast->v != mix((uint64_t)i);
	/* unlink everything: every finalizer may now run */
	for (int i = 0; i < 2; i++)
		for (int h = 0; h < nhold; h++)
			for (int k = 0; k < NKIDS; k++) {
				drop(muts[i].hold[h]->kid[k]);
				muts[i].hold[h]->kid[k] = NULL;
			}
	for (int i = 0; i < 4; i++) {
		goro_gc();
		goro_sleep(20 * 1000 * 1000);
	}
}

static void run(struct __test_metadata *_metadata, const char *gorodebug)
{
	long nfin = 0;

	if (gorodebug)
		gorodebug_add(gorodebug);
	ASSERT_EQ(0, goro_main(conc_main, NULL));
	for (int i = 0; i < 2; i++) {
		EXPECT_EQ(0, muts[i].bad);
		EXPECT_GT(muts[i].iters, 10000);
		EXPECT_GT(muts[i].checked, NHOLD);
		nfin += muts[i].nfin;
	}
	EXPECT_EQ(0, ballast_bad);
	if (nkeepers) {
		EXPECT_EQ(0, __atomic_load_n(&keep_bad, __ATOMIC_RELAXED));
		EXPECT_GT(__atomic_load_n(&keep_got, __ATOMIC_RELAXED), 1000);
		TH_LOG("keepers held %ld fresh objects (%ld with finalizers)",
		       keep_got, keep_fin);
	}
	EXPECT_EQ(0, __atomic_load_n(&fin_bad, __ATOMIC_RELAXED));
	/* collections ran under the mutators, and freed what they dropped */
	EXPECT_GE(st1.num_gc - st0.num_gc, 5);
	EXPECT_GT(st1.frees, st0.frees + 10000);
	/* conservative stacks may keep a few alive: most, not all */
	EXPECT_GT(nfin, 100);
	EXPECT_GT(__atomic_load_n(&fin_ran, __ATOMIC_RELAXED), nfin / 2);
	TH_LOG("%ld+%ld iterations, %u collections, %ld of ~%ld finalizers",
	       muts[0].iters, muts[1].iters, st1.num_gc - st0.num_gc,
	       fin_ran, nfin);
}

TEST(mutate_during_mark)
{
	run(_metadata, NULL);
}

TEST(mutate_during_mark_black)
{
	run(_metadata, "gcblack=1");
}

TEST(mutate_during_mark_softdirty)
{
	run(_metadata, "gcconc=3");
}

TEST(mutate_during_mark_all_pages)
{
	run(_metadata, "gcconc=2");
}

/*
 * The holders beyond 40 MiB of pointer-free heap: the pause claims the
 * heap's 16 MiB granules four at a time and walks only the runs that
 * may hold pointers, so the granule of the graph follows granules it
 * skips within one claim.
 */
TEST(mutate_across_gap)
{
	gap_bytes = 40UL << 20;	/* each test runs in a child of its own */
	run(_metadata, NULL);
}

/* The number just before key in line (0 if none). */
static long number_before(const char *line, const char *key)
{
	const char *w = strstr(line, key), *p = w;

	while (p && p > line && p[-1] >= '0' && p[-1] <= '9')
		p--;
	return w && p != w ? strtol(p, NULL, 10) : 0;
}

/* run() with stderr kept in a file, then gctrace's lines to each() and
 * the rest (the checks' messages) back to stderr. */
static void run_traced(struct __test_metadata *_metadata,
		       const char *gorodebug, void (*each)(const char *line))
{
	char line[1024];
	int fd = dup(2);
	FILE *log = tmpfile();

	ASSERT_NE(NULL, log);
	ASSERT_LE(0, fd);
	fflush(stderr);
	EXPECT_EQ(2, dup2(fileno(log), 2));
	run(_metadata, gorodebug);
	fflush(stderr);
	dup2(fd, 2);
	close(fd);
	rewind(log);
	while (fgets(line, sizeof(line), log)) {
		if (!strncmp(line, "gc ", 3))
			each(line);
		else
			fputs(line, stderr);
	}
	fclose(log);
}

static int ntraced, nmatched;	/* lines seen by each(), and matched */

/* Concurrent pauses while every keeper and idler ran (ntraced), and of
 * those the ones that read fewer than pause_below stacks (nmatched). */
static long pause_below;

static void stacks_at_pause(const char *line)
{
	uint32_t n = (uint32_t)strtoul(line + 3, NULL, 10);

	if (!strstr(line, "[concurrent") || n < keep_gc_first ||
	    n > keep_gc_last)
		return;
	ntraced++;
	nmatched += number_before(line, " stacks at pause") < pause_below;
}

/*
 * Keepers (above) beside the mutators.  A pause that left out a keeper
 * fed since its stack was read (readied, not run: clearing its word
 * only when it runs) lost 500-600 of some 16 000 objects here.  The
 * idlers stay parked throughout, so every pause while they do leaves
 * them out (but perhaps the first, if its mark ran before they parked):
 * it reads fewer stacks than there are keepers and idlers.
 */
static void expect_idlers_left_out(struct __test_metadata *_metadata)
{
	TH_LOG("%d of %d concurrent pauses read under %ld stacks",
	       nmatched, ntraced, pause_below);
	if (!ntraced)	/* no concurrent mark: TSan, or no uffd-wp */
		return;
	EXPECT_GT(nmatched, 0);
	EXPECT_GE(nmatched + 1, ntraced);
}

TEST(parked_stacks_fed_during_mark)
{
	nkeepers = NKEEPERS;
	pause_below = 2 * nkeepers;
	run_traced(_metadata, "gctrace=1", stacks_at_pause);
	expect_idlers_left_out(_metadata);
}

/* The same with invariants=1: the pause also checks that every stack
 * it leaves out is as the mark read it (same saved sp, same words that
 * may be heap pointers) and throws otherwise. */
TEST(parked_stacks_fed_during_mark_checked)
{
	nkeepers = NKEEPERS;
	run(_metadata, "invariants=1");
}

/*
 * The keepers on stacks larger than the default: each is a mapping of
 * its own, whose mark byte is in its g, read as the pause follows the
 * big stacks' list.  invariants=1 checks each stack left out.
 */
TEST(parked_big_stacks_fed_during_mark)
{
	nkeepers = NKEEPERS;
	keeper_stack = 512 << 10;
	pause_below = 2 * nkeepers;
	run_traced(_metadata, "gctrace=1,invariants=1", stacks_at_pause);
	expect_idlers_left_out(_metadata);
}

/*
 * gcstackmarks=0: the path of a kernel without membarrier, where the
 * pause cannot trust the marks and reads every stack again.  The
 * keepers' objects must survive, and every pause while they run must
 * have read every keeper's and idler's stack.
 */
TEST(parked_stacks_all_read_without_marks)
{
	nkeepers = NKEEPERS;
	pause_below = 2 * nkeepers;
	run_traced(_metadata, "gctrace=1,gcstackmarks=0", stacks_at_pause);
	TH_LOG("%d of %d concurrent pauses read under %ld stacks",
	       nmatched, ntraced, pause_below);
	EXPECT_EQ(0, nmatched);
}

static void waited(const char *line)
{
	nmatched += number_before(line, " waits") > 0 &&
		    strstr(line, "[concurrent");
}

/*
 * Paced, not forced: with GOGC=5 the mutators cross the goal in every
 * mark and wait for its pause, and the rest of the mark then runs on
 * the collector's helper threads too (goal_waiting), the world running.
 * gctrace's lines show that it happened: a concurrent cycle with waits.
 * gcconc=2 runs the concurrent mark on any kernel; TSan builds have
 * none.
 */
TEST(mutate_during_mark_goal_waits)
{
	setenv("GOGC", "5", 1);
	run_traced(_metadata, "gctrace=1,gcconc=2", waited);
	unsetenv("GOGC");
	TH_LOG("%d concurrent cycles with goroutines waiting past the goal",
	       nmatched);
	if (!TSAN)
		EXPECT_GT(nmatched, 0);
}

static void left_protected(const char *line)
{
	if (!strstr(line, "[concurrent, uffd-wp]"))
		return;
	ntraced++;
	nmatched += number_before(line, " left protected") > 0;
}

/*
 * Full spans stay write-protected from one mark to the next (mgc.c):
 * the ballast (never written) and, with 16 times the holders, whole
 * runs of full holder spans that the mutators then write between the
 * marks and during them.  Those pages fault, are protected again at the
 * next start and rescanned where written, and their spans are not left
 * protected again; no fresh object stored into them may be lost.  Where
 * the kernel has userfaultfd's write-protect (6.7+), some cycle must
 * have left pages protected.
 */
TEST(mutate_kept_spans)
{
	nhold = 16 * NHOLD;
	run_traced(_metadata, "gctrace=1", left_protected);
	TH_LOG("%d of %d cycles on userfaultfd left full spans protected",
	       nmatched, ntraced);
	if (ntraced)
		EXPECT_GT(nmatched, 0);
}

TEST_HARNESS_MAIN
