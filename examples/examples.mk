# Example programs, linked statically so that they also run in the VM's
# initramfs.  handoff uses only the ioctl ABI; the others link libgoro.
EXAMPLES	:= $(O)/examples/handoff

$(O)/examples/handoff: examples/handoff.c uapi/linux/goro.h
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(UAPI_CFLAGS) -static -pthread -o $@ $<

ifneq ($(LIBGORO_A),)
GORO_EXAMPLES	:= $(filter-out $(O)/examples/handoff, \
		   $(patsubst examples/%.c,$(O)/examples/%,$(wildcard examples/*.c)))
EXAMPLES	+= $(GORO_EXAMPLES)

$(GORO_EXAMPLES): $(O)/examples/%: examples/%.c $(LIBGORO_A) libgoro/include/goro.h
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -Ilibgoro/include -static -pthread -o $@ $< \
		$(LIBGORO_A) $(LIBGORO_LIBS)
endif

.PHONY: examples
examples: $(EXAMPLES)
