# Test programs: the ioctl ABI suite and the library suite.  Each fragment
# appends its binaries to SELFTESTS, VM_TESTS and NATIVE_TESTS.
-include selftests/goro/goro.mk
-include selftests/libgoro/tests.mk
-include selftests/perf/perf.mk

.PHONY: selftests
selftests: $(SELFTESTS)

# make install into a scratch DESTDIR, then build against it with
# pkg-config alone (native only: it needs the host's toolchain).
NATIVE_TESTS	+= $(CURDIR)/selftests/install/install_test.sh

# make bench's joining of rounds (scripts/bench-join.awk).
NATIVE_TESTS	+= $(CURDIR)/selftests/bench/bench_join_test.sh
