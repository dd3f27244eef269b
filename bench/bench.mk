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

# Probes of the host, not benchmarks (no twin, no ratio): lineprobe, a
# cache line's round trip between two CPUs, which scripts/bench.sh
# prints beside each benchmark; wpprobe, what the collector's write
# tracking costs per page (protect, write fault, unprotect), printed
# once before the benchmarks.
PROBES		:= $(patsubst %,$(O)/bench/probe/%,lineprobe wpprobe)
BENCH_EXTRA	+= $(PROBES)
build-lists: $(PROBES)

$(PROBES): $(O)/bench/probe/%: bench/probe/%.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -pthread -o $@ $<
