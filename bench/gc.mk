# Benchmarks of the allocator and the collector (bench/NAME.c against
# bench/go/NAME.go, paired by scripts/bench.sh):
#   binarytrees  the Benchmarks Game program: time, peak RSS, max pause
#                (binarytrees21: the same at depth 21)
#   alloc        small mixed-size objects on 2 Ps: ns per allocation
#   gcheap       a 1 GiB live heap under steady allocation: max and p99
#                pause (gcheap SECONDS MIB)
#   gcstacks     the same pauses with 100 000 goroutines parked (gcstacks
#                SECONDS GOROUTINES)
# They link libc dynamically (libgoro statically): a dynamic
# executable's own code is preemptible asynchronously (preempt.c), as a
# Go program's is, so a stop-the-world does not wait for a loop that
# neither allocates nor blocks.
ifneq ($(LIBGORO_A),)
GC_BENCH	:= binarytrees alloc gcheap gcstacks
GC_BENCH_BINS	:= $(patsubst %,$(O)/bench/%,$(GC_BENCH))
BENCH_BINS	+= $(GC_BENCH_BINS)

$(GC_BENCH_BINS): $(O)/bench/%: bench/%.c bench/bench_util.h $(LIBGORO_A) \
		libgoro/include/goro.h
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -Ilibgoro/include -Ibench -pthread \
		-o $@ $< $(LIBGORO_A) $(LIBGORO_LIBS)

# binarytrees21: the long run (depth 21, a 2^21-node long-lived tree),
# a wrapper so that scripts/bench.sh runs it like any other benchmark.
BENCH_BINS	+= $(O)/bench/binarytrees21

$(O)/bench/binarytrees21: $(O)/bench/binarytrees
	@printf '#!/bin/sh\n# binarytrees at depth 21\nexec %s 21 "$$@"\n' $< >$@
	@chmod +x $@
endif

# Boehm GC twins (libgc-dev): $(O)/bench/boehm/NAME, run by hand beside
# the goro and Go programs (they print "bench KEY: boehm=V UNIT").
ifneq ($(wildcard /usr/include/gc.h),)
BOEHM_BENCH_BINS := $(O)/bench/boehm/binarytrees $(O)/bench/boehm/alloc
BENCH_EXTRA	+= $(BOEHM_BENCH_BINS)
build-lists: $(BOEHM_BENCH_BINS)

$(BOEHM_BENCH_BINS): $(O)/bench/boehm/%: bench/boehm/%.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -pthread -o $@ $< -lgc
endif

# Explicit-free twins of alloc, for scale: glibc malloc/free and, with
# libmimalloc-dev, mimalloc ("bench alloc/procs=2: glibc=V ns/op").
MALLOC_BENCH_BINS := $(O)/bench/malloc/alloc-glibc
$(O)/bench/malloc/alloc-glibc: bench/malloc/alloc.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -pthread -o $@ $<
ifneq ($(wildcard /usr/include/mimalloc.h),)
MALLOC_BENCH_BINS += $(O)/bench/malloc/alloc-mimalloc
$(O)/bench/malloc/alloc-mimalloc: bench/malloc/alloc.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -DUSE_MIMALLOC -pthread -o $@ $< -lmimalloc
endif
BENCH_EXTRA	+= $(MALLOC_BENCH_BINS)
build-lists: $(MALLOC_BENCH_BINS)
