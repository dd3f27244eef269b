# selftests/libgoro: the library's kselftest suite.  Every
# selftests/libgoro/NAME.c builds three ways:
#   $(O)/selftests/libgoro/NAME        static, plain libgoro (native + VM)
#   $(O)/selftests/libgoro/asan/NAME   dynamic, ASan libgoro (native)
#   $(O)/selftests/libgoro/tsan/NAME   dynamic, TSan libgoro (native)
# and $(O)/selftests/libgoro/procs1/NAME, a wrapper that runs the plain
# binary with GOMAXPROCS=1 (native).  Tests may include libgoro/src's
# internal headers: the archives they link (internal/libgoro.a, and the
# sanitizer builds) resolve hidden symbols too.

LGT_NAMES	:= $(patsubst selftests/libgoro/%.c,%,$(wildcard selftests/libgoro/*.c))
LGT_HDRS	:= $(wildcard selftests/libgoro/*.h)
LGT_PLAIN	:= $(patsubst %,$(O)/selftests/libgoro/%,$(LGT_NAMES))
LGT_ASAN	:= $(patsubst %,$(O)/selftests/libgoro/asan/%,$(LGT_NAMES))
LGT_TSAN	:= $(patsubst %,$(O)/selftests/libgoro/tsan/%,$(LGT_NAMES))
LGT_PROCS1	:= $(patsubst %,$(O)/selftests/libgoro/procs1/%,$(LGT_NAMES))

SELFTESTS	+= $(LGT_PLAIN) $(LGT_ASAN) $(LGT_TSAN) $(LGT_PROCS1)
VM_TESTS	+= $(LGT_PLAIN)
NATIVE_TESTS	+= $(LGT_PLAIN) $(LGT_PROCS1) $(LGT_ASAN) $(LGT_TSAN)

# The harness's own code trips -Wsign-compare and -Wunused-parameter.
LGT_CFLAGS	:= $(BASE_CFLAGS) -Wno-sign-compare -Wno-unused-parameter \
		   -fstack-clash-protection -Ilibgoro/include -Ilibgoro/src \
		   $(UAPI_CFLAGS) -I$(O)/ksft -Iselftests/libgoro

$(LGT_PLAIN): $(O)/selftests/libgoro/%: selftests/libgoro/%.c $(LGT_HDRS) \
		$(LIBGORO_INTERNAL_A) libgoro/include/goro.h $(KSFT)
	@mkdir -p $(@D)
	$(CC) $(LGT_CFLAGS) -static -pthread -o $@ $< $(LIBGORO_INTERNAL_A) $(LIBGORO_LIBS)

$(LGT_ASAN): $(O)/selftests/libgoro/asan/%: selftests/libgoro/%.c $(LGT_HDRS) \
		$(LIBGORO_ASAN_A) libgoro/include/goro.h $(KSFT)
	@mkdir -p $(@D)
	$(CC) $(LGT_CFLAGS) -fsanitize=address -pthread -o $@ $< $(LIBGORO_ASAN_A) $(LIBGORO_LIBS)

$(LGT_TSAN): $(O)/selftests/libgoro/tsan/%: selftests/libgoro/%.c $(LGT_HDRS) \
		$(LIBGORO_TSAN_A) libgoro/include/goro.h $(KSFT)
	@mkdir -p $(@D)
	$(CC) $(LGT_CFLAGS) -fsanitize=thread -pthread -o $@ $< $(LIBGORO_TSAN_A) $(LIBGORO_LIBS)

$(LGT_PROCS1): $(O)/selftests/libgoro/procs1/%: $(O)/selftests/libgoro/%
	@mkdir -p $(@D)
	@printf '#!/bin/sh\n# %s with one P\nGOMAXPROCS=1 exec %s "$$@"\n' \
		$(notdir $@) $< >$@
	@chmod +x $@

# $(O)/selftests/libgoro/epoll/NAME: the plain binary on the epoll
# poller (GORODEBUG=netpoll=epoll, added to any GORODEBUG given), so
# that the whole suite runs on both pollers (native).
LGT_EPOLL	:= $(patsubst %,$(O)/selftests/libgoro/epoll/%,$(LGT_NAMES))
SELFTESTS	+= $(LGT_EPOLL)
NATIVE_TESTS	+= $(LGT_EPOLL)

$(LGT_EPOLL): $(O)/selftests/libgoro/epoll/%: $(O)/selftests/libgoro/%
	@mkdir -p $(@D)
	@printf '#!/bin/sh\n# %s on the epoll poller\nGORODEBUG="$${GORODEBUG:+$$GORODEBUG,}netpoll=epoll" exec %s "$$@"\n' \
		$(notdir $@) $< >$@
	@chmod +x $@

# A shared object with a global, dlopen'd by gc_basic's dynamic builds
# (ASan, TSan): a shared library's data segment is a root.
LGT_SHLIB	:= $(O)/selftests/libgoro/libgc_shlib.so
SELFTESTS	+= $(LGT_SHLIB)

$(LGT_SHLIB): selftests/libgoro/shlib/gc_shlib.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -fPIC -shared -o $@ $<

# $(O)/selftests/libgoro/nocompl/NAME: the net_* tests with io_uring's
# completion paths off (GORODEBUG=netpollaccept=0,netpollrecv=0): the
# readiness paths a kernel without multishot accept and recv gets
# (before 5.19 and 6.0; the VM's 6.1 and 6.12 have both) (native).
LGT_NOCOMPL	:= $(patsubst %,$(O)/selftests/libgoro/nocompl/%,$(filter net_%,$(LGT_NAMES)))
SELFTESTS	+= $(LGT_NOCOMPL)
NATIVE_TESTS	+= $(LGT_NOCOMPL)

$(LGT_NOCOMPL): $(O)/selftests/libgoro/nocompl/%: $(O)/selftests/libgoro/%
	@mkdir -p $(@D)
	@printf '#!/bin/sh\n# %s without multishot accept and provided-buffer receives\nGORODEBUG="$${GORODEBUG:+$$GORODEBUG,}netpollaccept=0,netpollrecv=0" exec %s "$$@"\n' \
		$(notdir $@) $< >$@
	@chmod +x $@
