# libgoro: the runtime library, in three variants:
#   $(O)/libgoro/libgoro.{a,so.0,so,pc}   plain (static + shared)
#   $(O)/libgoro/asan/libgoro.a           -fsanitize=address
#   $(O)/libgoro/tsan/libgoro.a           -fsanitize=thread
# Sources: every libgoro/src/*.c and libgoro/src/arch/x86_64/*.S (a
# glob, so that new files of any helper are built without edits here).
# Symbols are hidden unless marked GORO_API; libgoro.map gives them their
# version node; the .so links with -z defs so nothing is left undefined.
# Hidden is not enough in a static link: the installed libgoro.a is one
# object, partially linked (ld -r) with its hidden symbols made local,
# so that a program with its own `debug' or `allm', or calling glibc's
# malloc_stats, links against it.  The selftests, which reach internal
# symbols, link the unlocalized $(O)/libgoro/internal/libgoro.a.

LIBGORO_SRCS	:= $(wildcard libgoro/src/*.c)
LIBGORO_ASM	:= $(wildcard libgoro/src/arch/x86_64/*.S)
LIBGORO_HDRS	:= $(wildcard libgoro/src/*.h libgoro/src/arch/x86_64/*.h) \
		   libgoro/include/goro.h uapi/linux/goro.h

LIBGORO_CFLAGS	:= $(BASE_CFLAGS) -fPIC -fvisibility=hidden \
		   -fstack-clash-protection -fno-optimize-sibling-calls \
		   -Ilibgoro/include -Ilibgoro/src $(UAPI_CFLAGS)
LIBGORO_LIBS	:= -pthread -luring

# libgoro's code is never preemptible (preempt.c): every object's text
# moves to the goro_text section, whose bounds the linker then defines
# as __start_goro_text/__stop_goro_text, in the executable or the .so.
OBJCOPY		?= objcopy
GORO_TEXT	:= $(foreach s,.text .text.unlikely .text.hot .text.startup \
		     .text.exit,--rename-section $(s)=goro_text)

LIBGORO_A	:= $(O)/libgoro/libgoro.a
LIBGORO_INTERNAL_A := $(O)/libgoro/internal/libgoro.a
LIBGORO_SO	:= $(O)/libgoro/libgoro.so.0
LIBGORO_ASAN_A	:= $(O)/libgoro/asan/libgoro.a
LIBGORO_TSAN_A	:= $(O)/libgoro/tsan/libgoro.a
LIBGORO_TARGETS	:= $(LIBGORO_A) $(LIBGORO_INTERNAL_A) $(LIBGORO_SO) \
		   $(O)/libgoro/libgoro.so $(O)/libgoro/libgoro.pc \
		   $(LIBGORO_ASAN_A) $(LIBGORO_TSAN_A)

SAN_asan	:= -fsanitize=address
SAN_tsan	:= -fsanitize=thread

# libgoro_objs(VARIANT-DIR): object paths of one variant.
libgoro_objs = $(patsubst libgoro/src/%.c,$(1)/%.o,$(LIBGORO_SRCS)) \
	       $(patsubst libgoro/src/%.S,$(1)/%.o,$(LIBGORO_ASM))

LIBGORO_OBJS		:= $(call libgoro_objs,$(O)/libgoro/obj)
LIBGORO_ASAN_OBJS	:= $(call libgoro_objs,$(O)/libgoro/asan/obj)
LIBGORO_TSAN_OBJS	:= $(call libgoro_objs,$(O)/libgoro/tsan/obj)

.PHONY: libgoro
libgoro: $(LIBGORO_TARGETS)

$(O)/libgoro/obj/%.o: libgoro/src/%.c $(LIBGORO_HDRS)
	@mkdir -p $(@D)
	$(CC) $(LIBGORO_CFLAGS) -c -o $@ $<
	$(OBJCOPY) $(GORO_TEXT) $@
$(O)/libgoro/obj/%.o: libgoro/src/%.S libgoro/src/arch/x86_64/arch.h
	@mkdir -p $(@D)
	$(CC) $(LIBGORO_CFLAGS) -c -o $@ $<
	$(OBJCOPY) $(GORO_TEXT) $@

$(O)/libgoro/asan/obj/%.o: libgoro/src/%.c $(LIBGORO_HDRS)
	@mkdir -p $(@D)
	$(CC) $(LIBGORO_CFLAGS) $(SAN_asan) -c -o $@ $<
	$(OBJCOPY) $(GORO_TEXT) $@
$(O)/libgoro/asan/obj/%.o: libgoro/src/%.S libgoro/src/arch/x86_64/arch.h
	@mkdir -p $(@D)
	$(CC) $(LIBGORO_CFLAGS) -c -o $@ $<
	$(OBJCOPY) $(GORO_TEXT) $@

$(O)/libgoro/tsan/obj/%.o: libgoro/src/%.c $(LIBGORO_HDRS)
	@mkdir -p $(@D)
	$(CC) $(LIBGORO_CFLAGS) $(SAN_tsan) -c -o $@ $<
	$(OBJCOPY) $(GORO_TEXT) $@
$(O)/libgoro/tsan/obj/%.o: libgoro/src/%.S libgoro/src/arch/x86_64/arch.h
	@mkdir -p $(@D)
	$(CC) $(LIBGORO_CFLAGS) -c -o $@ $<
	$(OBJCOPY) $(GORO_TEXT) $@

$(LIBGORO_A): $(LIBGORO_OBJS)
	@rm -f $@ $(O)/libgoro/libgoro.o
	$(LD) -r -o $(O)/libgoro/libgoro.o $^
	$(OBJCOPY) --localize-hidden $(O)/libgoro/libgoro.o
	$(AR) rcs $@ $(O)/libgoro/libgoro.o
$(LIBGORO_INTERNAL_A): $(LIBGORO_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	$(AR) rcs $@ $^
$(LIBGORO_ASAN_A): $(LIBGORO_ASAN_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^
$(LIBGORO_TSAN_A): $(LIBGORO_TSAN_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(LIBGORO_SO): $(LIBGORO_OBJS) libgoro/libgoro.map
	$(CC) -shared -Wl,-soname,libgoro.so.0 -Wl,-z,defs \
		-Wl,--version-script=libgoro/libgoro.map \
		-o $@ $(LIBGORO_OBJS) $(LIBGORO_LIBS)
$(O)/libgoro/libgoro.so: $(LIBGORO_SO)
	ln -sf libgoro.so.0 $@

$(O)/libgoro/libgoro.pc: libgoro/libgoro.mk
	@mkdir -p $(@D)
	@printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' \
		'includedir=$${prefix}/include' '' 'Name: libgoro' \
		'Description: goroutines, channels, timers and sync for C' \
		'Version: 0.1' 'Libs: -L$${libdir} -lgoro' \
		'Libs.private: -pthread -luring' 'Cflags: -I$${includedir}' >$@
