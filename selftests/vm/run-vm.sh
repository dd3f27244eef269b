#!/bin/bash
# run-vm.sh: boot a Debian kernel under qemu with goro.ko loaded and run
# test programs in it; the kernel half of goro is tested this way because
# the build machines cannot load modules.  See Documentation/vm.rst.
#
#   selftests/vm/run-vm.sh [--kernel 6.1|6.12] [--kmod PATH] [--timeout S]
#                          [--test-timeout S] [--env "K=V ..."] [--bench]
#                          [--no-kmod] [--script FILE] [--keep] TEST...
#
# The initramfs is a cached base (busybox-static, perf and its shared
# libraries) followed by a small per-run archive (goro.ko, /init, the
# tests and the shared libraries of any dynamic test); the kernel unpacks
# concatenated gzip'd cpio archives in order.
#
# Verdict: the kselftest "# Totals:" line of each test is summed; a test
# that exits non-zero or prints no Totals line counts as a failure, and so
# does a failed insmod or rmmod, a timeout, or a dmesg line that says BUG,
# WARNING, Oops, lockdep, KASAN, refcount_t or kmemleak.  The last line
# printed is "vm(<series>): N passed, N failed[, N skipped]".
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)

series=6.1 kmod="" timeout=900 test_timeout=600 envs="" bench=0
use_kmod=1 script="" keep=0
usage() { sed -n '6,10p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) series=$2; shift 2 ;;
	--kmod) kmod=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--test-timeout) test_timeout=$2; shift 2 ;;
	--env) envs="$envs $2"; shift 2 ;;
	--bench) bench=1; shift ;;
	--no-kmod) use_kmod=0; shift ;;
	--script) script=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) usage ;;
	--*) echo "run-vm: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done
tag="vm($series)"

die() { echo "run-vm: $*" >&2; echo "$tag: 0 passed, 1 failed"; exit 1; }

vmlinuz=$("$top/scripts/kdir.sh" "$series" image) || die "no kernel $series"
[ -r "$vmlinuz" ] || die "$vmlinuz is not readable (linux-image for $series?)"
[ -n "$kmod" ] || kmod=$top/build/kmod/$series/goro.ko
[ "$use_kmod" = 0 ] || [ -r "$kmod" ] || die "no $kmod (make kmod)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing"

vmdir=$top/build/vm
mkdir -p "$vmdir"
work=$(mktemp -d "$vmdir/run-$series.XXXXXX")
[ "$keep" = 1 ] || trap 'rm -rf "$work"' EXIT

# copy_with_libs ROOT FILE: FILE at its own path plus what the dynamic
# loader will need for it.
copy_with_libs() {
	local root=$1 f=$2 lib
	mkdir -p "$root$(dirname "$f")"
	cp -L "$f" "$root$f"
	for lib in $(ldd "$f" 2>/dev/null | grep -o '/[^ ]*'); do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

# The base archive changes only with busybox or perf.
base=$vmdir/base.cpio.gz
perf_bin=$(command -v perf || true)
stamp="$(ls -l /bin/busybox ${perf_bin:+"$perf_bin"} 2>/dev/null | md5sum)"
if [ ! -s "$base" ] || [ "$(cat "$base.stamp" 2>/dev/null)" != "$stamp" ]; then
	b=$work/base
	mkdir -p "$b/bin" "$b/dev" "$b/proc" "$b/sys" "$b/tmp" "$b/usr/bin"
	cp /bin/busybox "$b/bin/busybox"
	[ -n "$perf_bin" ] && copy_with_libs "$b" "$(readlink -f "$perf_bin")" &&
		ln -sf "$(readlink -f "$perf_bin")" "$b/usr/bin/perf.real"
	(cd "$b" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$base.tmp"
	mv "$base.tmp" "$base"
	echo "$stamp" >"$base.stamp"
fi

# The per-run archive.
r=$work/root
mkdir -p "$r/tests"
[ "$use_kmod" = 1 ] && cp "$kmod" "$r/goro.ko"
: >"$r/tests.list"
for t in "$@"; do
	[ -x "$t" ] || die "test $t is not an executable file"
	name=$(basename "$t")
	# Sanitizer variants share a basename: keep the variant in the name.
	case "$t" in */asan/*) name=asan-$name ;; */tsan/*) name=tsan-$name ;; esac
	copy_with_libs "$r" "$(readlink -f "$t")"
	ln -sf "$(readlink -f "$t")" "$r/tests/$name"
	echo "$name" >>"$r/tests.list"
done
if [ -n "$script" ]; then
	cp "$script" "$r/script.sh"
	chmod +x "$r/script.sh"
fi
cat >"$r/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
[ -e /usr/bin/perf ] || ln -s /usr/bin/perf.real /usr/bin/perf 2>/dev/null
use_kmod=$use_kmod
test_timeout=$test_timeout
[ -n "$envs" ] && export $envs
EOF
cat >>"$r/init" <<'EOF'
echo
echo "@@VM booted $(uname -r)"
if [ "$use_kmod" = 1 ]; then
	if insmod /goro.ko; then
		echo "@@VM insmod ok"
	else
		echo "@@VM insmod failed"
	fi
	[ -c /dev/goro ] || echo "@@VM no /dev/goro"
fi
if [ -x /script.sh ]; then
	/script.sh
	echo "@@VM script rc=$?"
else
	while read -r name; do
		echo "@@VM begin $name"
		start=$(cut -d' ' -f1 /proc/uptime)
		cd /tmp && timeout -s KILL "$test_timeout" "/tests/$name"
		rc=$?
		echo "@@VM took $name $start $(cut -d' ' -f1 /proc/uptime)"
		echo "@@VM end $name rc=$rc"
	done </tests.list
fi
if [ "$use_kmod" = 1 ]; then
	if rmmod goro; then
		echo "@@VM rmmod ok"
	else
		echo "@@VM rmmod failed: refcnt $(cat /sys/module/goro/refcnt)"
	fi
fi
if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan >/sys/kernel/debug/kmemleak
	echo "@@VM kmemleak-begin"
	cat /sys/kernel/debug/kmemleak
	echo "@@VM kmemleak-end"
fi
echo "@@VM dmesg-begin"
dmesg
echo "@@VM dmesg-end"
echo "@@VM done"
reboot -f
EOF
chmod +x "$r/init"
(cd "$r" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$work/run.cpio.gz"
cat "$base" "$work/run.cpio.gz" >"$work/initrd.cpio.gz"

log=$work/console.log
t0=$(date +%s)
timeout -s KILL "$timeout" qemu-system-x86_64 -nographic -no-reboot \
	-m 1024 -smp 2 -cpu max -kernel "$vmlinuz" \
	-initrd "$work/initrd.cpio.gz" \
	-append "console=ttyS0 panic=-1 oops=panic quiet loglevel=4" \
	</dev/null >"$log" 2>&1
qrc=$?
t1=$(date +%s)
tr -d '\r' <"$log" >"$log.txt"
log=$log.txt

pass=0 fail=0 skip=0 problems=""
problem() { problems="$problems$*"$'\n'; fail=$((fail + 1)); }

[ "$qrc" = 137 ] && problem "timeout after ${timeout}s"
grep -q '^@@VM done' "$log" || problem "the VM did not finish (qemu exit $qrc)"
if [ "$use_kmod" = 1 ]; then
	grep -q '^@@VM insmod ok' "$log" || problem "insmod failed"
	grep -q '^@@VM no /dev/goro' "$log" && problem "/dev/goro missing"
	grep -q '^@@VM rmmod ok' "$log" || problem "rmmod failed"
fi

if [ "$bench" = 1 ] || [ -n "$script" ]; then
	grep -a '^bench ' "$log"
	[ -n "$script" ] && sed -n '/^@@VM insmod/,/^@@VM script rc=/p' "$log" |
		grep -v '^@@VM'
	grep -q '^@@VM script rc=[1-9]' "$log" && problem "script failed"
else
	while read -r name; do
		out=$(sed -n "/^@@VM begin $name\$/,/^@@VM end $name rc=/p" "$log")
		rc=$(sed -n "s/^@@VM end $name rc=//p" <<<"$out")
		totals=$(grep -a '^# Totals:' <<<"$out" | tail -n 1)
		p=$(sed -n 's/.* pass:\([0-9]*\).*/\1/p' <<<"$totals")
		f=$(sed -n 's/.* fail:\([0-9]*\).*/\1/p' <<<"$totals")
		s=$(sed -n 's/.* skip:\([0-9]*\).*/\1/p' <<<"$totals")
		if [ -z "$totals" ]; then
			problem "$name: no Totals line (exit ${rc:-none})"
			grep -a '^not ok\|^#' <<<"$out" | tail -n 5
			continue
		fi
		pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
		[ "$f" != 0 ] && grep -a '^not ok' <<<"$out"
		if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
			problem "$name: exit $rc with no failed case"
		fi
		secs=$(sed -n "s/^@@VM took $name //p" "$log" | awk '{printf "%.1f", $2 - $1}')
		printf '%-40s pass:%s fail:%s skip:%s (%s s)\n' "$name" "$p" "$f" "$s" "$secs"
	done <"$r/tests.list"
fi

dmesg_bad=$(sed -n '/^@@VM dmesg-begin/,/^@@VM dmesg-end/p' "$log" |
	grep -E 'BUG|WARNING|Oops|lockdep|possible circular|KASAN|refcount_t|kmemleak|general protection|Call Trace')
[ -n "$dmesg_bad" ] && problem "dmesg: $dmesg_bad"
leaks=$(sed -n '/^@@VM kmemleak-begin/,/^@@VM kmemleak-end/p' "$log" | grep -c 'unreferenced object')
[ "$leaks" -gt 0 ] && problem "kmemleak: $leaks unreferenced objects"

echo "boot+run: $((t1 - t0)) s on $(sed -n 's/^@@VM booted //p' "$log")"
if [ -n "$problems" ]; then
	printf 'run-vm: %s' "$problems"
	echo "--- console tail ($log):"
	tail -n 40 "$log"
	[ "$keep" = 1 ] || { mkdir -p "$vmdir/failed"; cp "$log" "$vmdir/failed/console-$series.log"; }
fi
if [ "$skip" -gt 0 ]; then
	echo "$tag: $pass passed, $fail failed, $skip skipped"
else
	echo "$tag: $pass passed, $fail failed"
fi
[ "$fail" = 0 ]
