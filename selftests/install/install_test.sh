#!/bin/bash
# install_test: `make install` into a scratch DESTDIR, then build programs
# against the staged tree with pkg-config alone, as a user would against
# /usr/local.  Prints kselftest TAP with a "# Totals:" line.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$top/Makefile" ] || top=$(cd "$(dirname "$0")/../../.." && pwd)
n=0 fails=0 skips=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
bad() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n $1"; }
check() { local what=$1; shift; if "$@" >>"$log" 2>&1; then ok "$what"; else bad "$what"; fi; }

d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
log=$d/log
prefix=/usr/local
root=$d/root
echo "TAP version 13"

check "make install into DESTDIR" \
	make -s -C "$top" install DESTDIR="$root" PREFIX="$prefix"
lib=$root$prefix/lib
export PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_LIBDIR=$lib/pkgconfig
check "pkg-config finds libgoro" pkg-config --exists libgoro
check "libgoro.so.0 has its soname" \
	sh -c "readelf -d '$lib/libgoro.so.0' | grep -q 'SONAME.*\[libgoro.so.0\]'"
check "only goro_ symbols are exported" \
	sh -c "! nm -D --defined-only '$lib/libgoro.so.0' | awk '\$2 ~ /[TDB]/ {print \$3}' | grep -v '^goro_' | grep -v '^GORO_'"

# shellcheck disable=SC2046
check "build the demo with pkg-config (shared)" \
	cc -o "$d/demo" "$top/examples/demo.c" $(pkg-config --cflags --libs libgoro)
check "run it against the staged libgoro.so" \
	sh -c "LD_LIBRARY_PATH='$lib' '$d/demo' | grep -q '(correct)'"
# shellcheck disable=SC2046
check "build it static with pkg-config --static" \
	cc -static -o "$d/demo.static" "$top/examples/demo.c" \
		$(pkg-config --static --cflags --libs libgoro)
check "run the static build" sh -c "'$d/demo.static' | grep -q '(correct)'"
check "libgoro.a defines only goro_ symbols globally" \
	sh -c "! nm -g --defined-only '$lib/libgoro.a' | awk 'NF == 3 {print \$3}' | grep -v '^goro_'"
# A program with globals named as the runtime's internals, calling glibc's
# malloc_stats (libgoro's own counter had that name), links statically.
cat >"$d/names.c" <<'EOF'
#include <goro.h>
#include <malloc.h>
#include <stdio.h>
int debug = 7, allm = 1;
long fastrand(void) { return 4; }
static void main_g(void *arg) { *(int *)arg = debug + allm; }
int main(void)
{
	int r = 0;

	malloc_stats();
	if (goro_main(main_g, &r) || r != 8 || fastrand() != 4)
		return 1;
	puts("names ok");
	return 0;
}
EOF
# shellcheck disable=SC2046
check "a static program may use the runtime's internal names" \
	cc -static -o "$d/names" "$d/names.c" $(pkg-config --static --cflags --libs libgoro)
check "and runs" sh -c "'$d/names' 2>/dev/null | grep -q 'names ok'"
check "the ABI header compiles alone" \
	sh -c "echo '#include <linux/goro.h>
int main(void) { return GORO_IOC_INFO == 0; }' | cc -x c -I'$root$prefix/include' -o '$d/abi' -"

man=$root$prefix/share/man
missing=""
for fn in $(grep -o '\bgoro_[a-z_0-9]*(' "$top/libgoro/include/goro.h" | tr -d '(' | sort -u); do
	[ -f "$man/man3/$fn.3" ] || missing="$missing $fn"
done
if [ -z "$missing" ]; then ok "a man page for every public function"; else bad "no man page for:$missing"; fi
check "link pages source existing pages" sh -c "
	for f in '$man'/man3/*.3; do
		t=\$(sed -n 's/^\.so //p' \"\$f\")
		[ -z \"\$t\" ] || [ -f '$man'/\"\$t\" ] || { echo \"\$f -> \$t\"; exit 1; }
	done"
check "goro(4) installed" test -f "$man/man4/goro.4"

# perf finds every USDT probe of probes.h in the installed libgoro.so.0
# (uprobes: root and a kernel with them; else skipped, as perf's absence)
want=$(grep -o 'GORO_PROBE[0-9](\w*' "$top"/libgoro/src/*.c | sed 's/.*(//' | sort -u)
if [ "$(id -u)" = 0 ] && command -v perf >/dev/null &&
   { [ -e /sys/kernel/tracing/uprobe_events ] ||
     [ -e /sys/kernel/debug/tracing/uprobe_events ]; }; then
	so=$lib/libgoro.so.0
	perf buildid-cache --add "$so" >>"$log" 2>&1
	perf probe -q -x "$so" -a 'sdt_libgoro:*' >>"$log" 2>&1
	got=$(perf probe -l 2>/dev/null | grep -o 'sdt_libgoro:\w*' |
		sed 's/.*://' | sort -u)
	perf probe -q -d 'sdt_libgoro:*' >>"$log" 2>&1
	perf buildid-cache --remove "$so" >>"$log" 2>&1
	lost=$(comm -23 <(echo "$want") <(echo "$got") | tr '\n' ' ')
	if [ -n "$want" ] && [ -z "$lost" ]; then
		ok "perf probe finds the $(echo "$want" | wc -l) probes in libgoro.so.0"
	else
		bad "perf probe misses in libgoro.so.0: $lost"
	fi
else
	n=$((n + 1)) skips=$((skips + 1))
	echo "ok $n # SKIP perf probe of libgoro.so.0 (needs root, perf, uprobes)"
fi
check "goro.ko installed per kernel" sh -c "ls '$root'/lib/modules/*/extra/goro.ko"
check "udev rule installed" test -f "$root/etc/udev/rules.d/60-goro.rules"
check "dkms sources installed" test -f "$root/usr/src/goro-0.1/dkms.conf"

[ "$fails" = 0 ] || sed 's/^/# /' "$log"
echo "# Totals: pass:$((n - fails - skips)) fail:$fails xfail:0 xpass:0 skip:$skips error:0"
[ "$fails" = 0 ]
