# libgoro benchmarks: each bench/NAME.c links the plain static libgoro and
# has its Go twin in bench/go/NAME.go (scripts/bench.sh pairs them).
#   scheduler: spawn yield parked sleepers mutex preempt blocked
#   channels:  pingpong chanbuf select sieve
#   network:   echo accept (server in a child, plain C client)
ifneq ($(LIBGORO_A),)
RT_BENCH	:= spawn yield parked sleepers mutex preempt blocked \
		   pingpong chanbuf select sieve echo accept
RT_BENCH_BINS	:= $(patsubst %,$(O)/bench/%,$(RT_BENCH))
BENCH_BINS	+= $(RT_BENCH_BINS)

$(RT_BENCH_BINS): $(O)/bench/%: bench/%.c bench/bench_util.h $(LIBGORO_A) \
		libgoro/include/goro.h
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -Ilibgoro/include -Ibench -static -pthread \
		-o $@ $< $(LIBGORO_A) $(LIBGORO_LIBS)
endif
