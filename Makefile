# goro: top-level build.  Kbuild builds goro.ko (kernel convention); this
# file builds everything else and owns check, demo, bench and install.
#
# Outputs go to $(O) (default build/), never into the source tree:
#   $(O)/kmod/<series>/goro.ko       goro.ko per VM kernel series (6.1, 6.12)
#   $(O)/libgoro/libgoro.{a,so*,pc}  the library
#   $(O)/ksft/                       kselftest_harness.h from linux-source-6.1
#   $(O)/selftests/{goro,libgoro}/   test binaries (static: they go in the VM)
#   $(O)/bench/, $(O)/examples/      benchmarks and examples
#
# KDIR=/path/to/kernel/build builds goro.ko for that tree only.

O		?= build
override O	:= $(abspath $(O))
SERIES		?= 6.1 6.12
CC		?= gcc
PREFIX		?= /usr/local
DESTDIR		?=

# Warnings are errors everywhere; frame pointers stay for perf -g.
WFLAGS		:= -Wall -Wextra -Werror
BASE_CFLAGS	:= -std=gnu11 -O2 -g -fno-omit-frame-pointer \
		   -mno-omit-leaf-frame-pointer $(WFLAGS) -D_GNU_SOURCE
UAPI_CFLAGS	:= -I$(CURDIR)/uapi

.PHONY: all deps kmod libgoro selftests examples bench-build check demo \
	bench install clean vm-check native-check check-debug
# The fragments below fill these lists; all builds whatever they name.
all: kmod build-lists

deps:
	@scripts/install-deps.sh

# ---- goro.ko ---------------------------------------------------------------
KMOD_SRCS	:= Kbuild $(wildcard kmod/*.c kmod/*.h) uapi/linux/goro.h
ifneq ($(KDIR),)
KMOD_TARGETS	:= $(O)/kmod/custom/goro.ko
$(O)/kmod/custom/goro.ko: KDIR_FOR = $(KDIR)
else
KMOD_TARGETS	:= $(foreach s,$(SERIES),$(O)/kmod/$(s)/goro.ko)
$(O)/kmod/%/goro.ko: KDIR_FOR = $(shell scripts/kdir.sh $*)
endif
kmod: $(KMOD_TARGETS)

# Each kernel gets its own copy of the sources: Kbuild writes its objects
# beside them, and two kernels must not share objects.
$(O)/kmod/%/goro.ko: $(KMOD_SRCS)
	@rm -rf $(O)/kmod/$* && mkdir -p $(O)/kmod/$*
	@cp -r Kbuild kmod uapi $(O)/kmod/$*/
	$(MAKE) -C $(KDIR_FOR) M=$(O)/kmod/$* modules

# ---- kselftest harness -----------------------------------------------------
KSFT		:= $(O)/ksft/kselftest_harness.h
.PHONY: ksft
ksft: $(KSFT)
$(KSFT): scripts/extract-ksft.sh
	@scripts/extract-ksft.sh $(O)/ksft

-include libgoro/libgoro.mk
-include selftests/selftests.mk
-include examples/examples.mk
-include $(wildcard bench/*.mk)
-include packaging/install.mk

# ---- top-level commands ------------------------------------------------------
# check: native tests, then the VM suite on both kernels; the last line is
# "N passed, N failed".
check: deps
	@scripts/check.sh

demo: deps
	@scripts/demo.sh

# check-debug: the VM suite on a debug build of linux-source-6.1 (lockdep,
# DEBUG_ATOMIC_SLEEP, KASAN, kmemleak), built once and cached outside the
# tree by scripts/debug-kernel.sh (see Documentation/vm.rst); not part of
# check, which it would more than double.
check-debug:
	@scripts/install-deps.sh --debug-kernel
	@scripts/debug-kernel.sh
	@$(MAKE) -s all $(O)/kmod/6.1-debug/goro.ko
	@selftests/vm/run-vm.sh --kernel 6.1-debug --timeout 5400 \
		--test-timeout 1800 --env "GORO_TEST_DIV=100 GORO_TEST_SLOW=10 KSFT_TIMEOUT_MULT=10" $(VM_TESTS)

bench: deps
	@scripts/bench.sh $(BENCH)

clean:
	rm -rf $(O)

print-%:
	@echo $($*)

bench-build: $(BENCH_BINS)

.PHONY: build-lists
build-lists: $(LIBGORO_TARGETS) $(SELFTESTS) $(EXAMPLES) $(BENCH_BINS)
