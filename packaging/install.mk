# make install [PREFIX=/usr/local] [DESTDIR=]: what a user of goro needs,
# laid out as liburing ships it.
#   $(PREFIX)/include/goro.h, $(PREFIX)/include/linux/goro.h (the ABI)
#   $(PREFIX)/lib/libgoro.a, libgoro.so.0 (soname) and libgoro.so
#   $(PREFIX)/lib/pkgconfig/libgoro.pc (with this PREFIX)
#   $(PREFIX)/share/man/man3, man4: one page per group of functions and
#     a .so link page for every other name the group documents
#   /lib/modules/<release>/extra/goro.ko for each kernel built
#   /etc/udev/rules.d/60-goro.rules, /usr/src/goro-0.1 (dkms source)
# DESTDIR prefixes every path (staged installs, packaging, the tests).

GORO_VERSION	:= 0.1
INSTALL		?= install
LIBDIR		?= $(PREFIX)/lib
INCDIR		?= $(PREFIX)/include
MANDIR		?= $(PREFIX)/share/man
MAN3		:= $(wildcard man/*.3)
MAN4		:= $(wildcard man/*.4)

.PHONY: install install-lib install-man install-kmod uninstall
install: install-lib install-man install-kmod

install-lib: $(LIBGORO_A) $(LIBGORO_SO)
	$(INSTALL) -d $(DESTDIR)$(INCDIR)/linux $(DESTDIR)$(LIBDIR)/pkgconfig
	$(INSTALL) -m 644 libgoro/include/goro.h $(DESTDIR)$(INCDIR)/goro.h
	$(INSTALL) -m 644 uapi/linux/goro.h $(DESTDIR)$(INCDIR)/linux/goro.h
	$(INSTALL) -m 644 $(LIBGORO_A) $(DESTDIR)$(LIBDIR)/libgoro.a
	$(INSTALL) -m 755 $(LIBGORO_SO) $(DESTDIR)$(LIBDIR)/libgoro.so.0
	ln -sf libgoro.so.0 $(DESTDIR)$(LIBDIR)/libgoro.so
	sed -e 's|^prefix=.*|prefix=$(PREFIX)|' \
	    -e 's|^libdir=.*|libdir=$(LIBDIR)|' \
	    -e 's|^includedir=.*|includedir=$(INCDIR)|' \
		$(O)/libgoro/libgoro.pc >$(DESTDIR)$(LIBDIR)/pkgconfig/libgoro.pc

# Each page's NAME line lists the functions it documents; every name but
# the page's own gets a one-line page that sources it.
install-man:
	$(INSTALL) -d $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man4
	$(INSTALL) -m 644 $(MAN3) $(DESTDIR)$(MANDIR)/man3/
	$(INSTALL) -m 644 $(MAN4) $(DESTDIR)$(MANDIR)/man4/
	@for page in $(MAN3); do \
		base=$$(basename $$page .3); \
		for name in $$(sed -n '/^\.SH NAME/{n;s/ \\- .*//;s/,//g;p;q}' $$page); do \
			case $$name in goro_*) ;; *) continue ;; esac; \
			[ "$$name" = "$$base" ] && continue; \
			echo ".so man3/$$base.3" >$(DESTDIR)$(MANDIR)/man3/$$name.3; \
		done; \
	done

# The module of every kernel series built, in that kernel's extra/, the
# udev rule, and the sources for dkms (dkms.conf at their top).
install-kmod: $(KMOD_TARGETS)
	@for ko in $(KMOD_TARGETS); do \
		rel=$$(modinfo -F vermagic $$ko | cut -d' ' -f1); \
		$(INSTALL) -d $(DESTDIR)/lib/modules/$$rel/extra; \
		$(INSTALL) -m 644 $$ko $(DESTDIR)/lib/modules/$$rel/extra/goro.ko; \
		echo "  goro.ko -> /lib/modules/$$rel/extra"; \
	done
	$(INSTALL) -d $(DESTDIR)/etc/udev/rules.d
	$(INSTALL) -m 644 packaging/60-goro.rules $(DESTDIR)/etc/udev/rules.d/
	$(INSTALL) -d $(DESTDIR)/usr/src/goro-$(GORO_VERSION)
	cp -r Kbuild kmod uapi dkms.conf $(DESTDIR)/usr/src/goro-$(GORO_VERSION)/
