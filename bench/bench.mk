# Benchmarks of goro.ko itself: each bench/NAME.c is a static binary that
# carries its own plain-Linux twin and prints whole "ratio=" lines.  They
# need /dev/goro, so scripts/bench.sh runs the VM_BENCH ones in the VM
# (natively they print that they skipped and exit 0).
KMOD_BENCH		:= mswitch
KMOD_BENCH_BINS		:= $(patsubst %,$(O)/bench/%,$(KMOD_BENCH))
BENCH_BINS		+= $(KMOD_BENCH_BINS)
VM_BENCH		+= $(KMOD_BENCH_BINS)

$(KMOD_BENCH_BINS): $(O)/bench/%: bench/%.c uapi/linux/goro.h
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(UAPI_CFLAGS) -static -pthread -o $@ $<

# lineprobe: a cache line's round trip between two CPUs, which
# scripts/bench.sh prints beside each benchmark (not a benchmark itself).
LINEPROBE	:= $(O)/bench/probe/lineprobe
BENCH_EXTRA	+= $(LINEPROBE)
build-lists: $(LINEPROBE)

$(LINEPROBE): bench/probe/lineprobe.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -pthread -o $@ $<

# wpprobe: what the collector's write tracking costs per page here
# (protect, write fault, unprotect), printed once by scripts/bench.sh
# before the benchmarks (not a benchmark itself: no twin, no ratio).
WPPROBE		:= $(O)/bench/probe/wpprobe
BENCH_EXTRA	+= $(WPPROBE)
build-lists: $(WPPROBE)

$(WPPROBE): bench/probe/wpprobe.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -pthread -o $@ $<
