# selftests/goro: the goro.ko ioctl ABI suite (kselftest_harness.h, TAP).
# Each NAME_test.c builds into one static binary, so that it runs as is
# in the VM's initramfs; natively, without /dev/goro, every test SKIPs.
GORO_SELFTESTS		:= abi_test park_test note_test proc_test fuzz_test \
			   sysmon_test netpoll_test
GORO_SELFTEST_BINS	:= $(patsubst %,$(O)/selftests/goro/%,$(GORO_SELFTESTS))

SELFTESTS		+= $(GORO_SELFTEST_BINS)
VM_TESTS		+= $(GORO_SELFTEST_BINS)
NATIVE_TESTS		+= $(GORO_SELFTEST_BINS)

# kselftest_harness.h has an unused parameter, and its EXPECT_EQ(0, u32)
# idiom compares int literals with unsigned fields: both warnings are the
# harness's, not ours, and -Werror would turn them into build failures.
GORO_SELFTEST_CFLAGS	:= $(BASE_CFLAGS) -Wno-sign-compare -Wno-unused-parameter \
			   $(UAPI_CFLAGS) -I$(O)/ksft

$(GORO_SELFTEST_BINS): $(O)/selftests/goro/%: selftests/goro/%.c \
		selftests/goro/goro_test.h uapi/linux/goro.h $(KSFT)
	@mkdir -p $(@D)
	$(CC) $(GORO_SELFTEST_CFLAGS) -static -pthread \
		-o $@ $<
