# selftests/perf: perf_workload (static, for the VM) and trace_test.sh, a
# host-side test that records it with perf in the VM and checks every
# probe and tracepoint fired and tools/goro-trace converts the recording.
PERF_WORKLOAD	:= $(O)/selftests/perf/perf_workload
SELFTESTS	+= $(PERF_WORKLOAD)
NATIVE_TESTS	+= $(CURDIR)/selftests/perf/trace_test.sh

$(PERF_WORKLOAD): selftests/perf/perf_workload.c $(LIBGORO_A) libgoro/include/goro.h
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -Ilibgoro/include -static -pthread -o $@ $< \
		$(LIBGORO_A) $(LIBGORO_LIBS)
