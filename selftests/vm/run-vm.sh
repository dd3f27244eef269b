#!/bin/bash
# run-vm.sh: boot a Debian kernel under qemu with goro.ko loaded, run test
# programs in it and judge the run; the kernel half of goro is tested this
# way because the build machines can load no module.  Documentation/vm.rst.
#
# usage: selftests/vm/run-vm.sh [--kernel 6.1|6.12|6.1-debug] [--kmod PATH] [--no-kmod]
#            [--timeout S] [--test-timeout S] [--env "K=V ..."] [--bench]
#            [--script FILE] [--no-perf] [--keep] [--verbose] TEST...
#
# The initramfs is two concatenated gzip'd cpio archives, which the kernel
# unpacks in order: a base (busybox-static, perf with its shared libraries
# and loader) cached in build/vm/ under a key of everything it holds, and a
# small per-run archive (/init from init.sh, its config, goro.ko, the tests
# and the libraries of any dynamic test).  A run costs one boot, ~7 s here.
#
# Verdict: the kselftest "# Totals:" line of each test is summed; a test
# that exits non-zero or prints no Totals line counts as (at least) one
# failure, and so do a timeout, a failed insmod or rmmod, a missing
# /dev/goro, and any kernel line on the console or in dmesg that reports a
# BUG, WARNING, Oops, lockdep splat, KASAN/UBSAN report, refcount_t error,
# kmemleak leak or panic.  The last line printed is
# "vm(<series>): N passed, N failed[, N skipped]"; the exit status is 0
# only when nothing failed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/selftests/vm

work="" series=6.1 kmod="" use_kmod=1 timeout=900 test_timeout=600 envs=""
mode=tests script="" use_perf=1 keep=0 verbose=0
# usage [STATUS]: the synopsis above, on stderr unless asked for.
usage() {
	if [ "${1:-2}" = 0 ]; then
		sed -n '6,8s/^# //p' "$0"
	else
		sed -n '6,8s/^# //p' "$0" >&2
	fi
	exit "${1:-2}"
}
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) series=$2; shift 2 ;;
	--kmod) kmod=$2; shift 2 ;;
	--no-kmod) use_kmod=0; shift ;;
	--timeout) timeout=$2; shift 2 ;;
	--test-timeout) test_timeout=$2; shift 2 ;;
	--env) envs="$envs $2"; shift 2 ;;
	--bench) mode=bench; shift ;;
	--script) mode=script script=$2; shift 2 ;;
	--perf) use_perf=1; shift ;;
	--no-perf) use_perf=0; shift ;;
	--keep) keep=1; shift ;;
	-v|--verbose) verbose=1; shift ;;
	-h|--help) usage 0 ;;
	--) shift; break ;;
	-*) echo "run-vm: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || [ "$mode" = script ] || usage
tag="vm($series)"

# die MSG: the run could not even start; still end with the summary line.
die() {
	echo "run-vm: $*" >&2
	[ -z "${work:-}" ] || rm -rf "$work"
	echo "$tag: 0 passed, 1 failed"
	exit 1
}

case "$timeout$test_timeout" in *[!0-9]*) die "timeouts are whole seconds" ;; esac
vmlinuz=$("$top/scripts/kdir.sh" "$series" image) || die "no kernel series $series"
[ -r "$vmlinuz" ] || die "$vmlinuz is not readable (install linux-image for $series)"
[ -n "$kmod" ] || kmod=$top/build/kmod/$series/goro.ko
[ "$use_kmod" = 0 ] || [ -r "$kmod" ] || die "no $kmod (make kmod)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing"
[ -x /bin/busybox ] || die "/bin/busybox missing (busybox-static)"
[ "$mode" != script ] || [ -r "$script" ] || die "no script $script"

vmdir=$top/build/vm
mkdir -p "$vmdir"
work=$(mktemp -d "$vmdir/run-$series.XXXXXX") || die "cannot create a work dir"
t_start=$(date +%s.%N)

# pack DIR OUT LEVEL: DIR as a gzip'd newc cpio archive owned by root.
pack() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc -R 0:0 --quiet | gzip -"$3") >"$2"
}

# libs_of FILE: the shared objects and loader ldd lists for FILE.
libs_of() {
	ldd "$1" 2>/dev/null | grep -o '/[^ ]*' | sort -u
}

# install_at ROOT FILE...: each FILE at its own path under ROOT, symlinks
# resolved (the loader finds libraries by the path ldd printed).
install_at() {
	local root=$1 f
	shift
	for f; do
		[ -e "$root$f" ] && continue
		mkdir -p "$root$(dirname "$f")"
		cp -L "$f" "$root$f" || return 1
	done
}

# The base archive.  /usr/bin/perf is the real binary on Debian 12 (the
# version wrapper is diverted to perf.wrapper); if it is the wrapper
# script, the newest perf_<version> is used.
perf_bin=""
if [ "$use_perf" = 1 ]; then
	for p in /usr/bin/perf /usr/bin/perf_* /usr/lib/linux-tools-*/perf; do
		[ -x "$p" ] && [ "$(head -c 4 "$p")" = $'\x7fELF' ] && perf_bin=$p
		[ -n "$perf_bin" ] && [ "$p" = /usr/bin/perf ] && break
	done
	[ -n "$perf_bin" ] || echo "run-vm: no perf binary found, booting without perf" >&2
fi
base_files="/bin/busybox ${perf_bin:+$perf_bin $(libs_of "$perf_bin")}"
# shellcheck disable=SC2086
key=$( { echo "base layout 2 $perf_bin"; ls -lL $base_files; } | md5sum | cut -c1-12)
flavour=$([ -n "$perf_bin" ] && echo perf || echo noperf)
base=$vmdir/base-$flavour-$key.cpio.gz
if [ ! -s "$base" ]; then
	b=$work/base
	mkdir -p "$b"/{bin,sbin,dev,proc,sys,tmp,etc,usr/bin,usr/sbin,sys/kernel/debug}
	# The kernel opens /dev/console for /init before devtmpfs is mounted.
	mknod -m 600 "$b/dev/console" c 5 1 2>/dev/null
	mknod -m 666 "$b/dev/null" c 1 3 2>/dev/null
	cp /bin/busybox "$b/bin/busybox"
	if [ -n "$perf_bin" ]; then
		# shellcheck disable=SC2046
		install_at "$b" $(libs_of "$perf_bin") || die "cannot copy perf's libraries"
		cp -L "$perf_bin" "$b/usr/bin/perf"
	fi
	pack "$b" "$work/base.cpio.gz" 6 || die "cannot pack the base archive"
	mv "$work/base.cpio.gz" "$base"
	# Older bases of this flavour (another busybox or perf) are of no use.
	find "$vmdir" -maxdepth 1 -name "base-$flavour-*.cpio.gz" ! -name "${base##*/}" -delete
	rm -rf "$b"
fi

# The per-run archive.  Tests are named by their basename under /tests;
# two tests with one basename (e.g. an ASan build) get their directory's.
r=$work/root
mkdir -p "$r/tests" "$r/etc"
: >"$r/tests.list"
for t; do
	{ [ -f "$t" ] && [ -x "$t" ]; } || die "test $t is not an executable file"
	name=$(basename "$t")
	if grep -qxF "$name" "$r/tests.list"; then
		name=$(basename "$(dirname "$t")")-$name
		grep -qxF "$name" "$r/tests.list" && name=$name-$(wc -l <"$r/tests.list")
	fi
	cp -L "$t" "$r/tests/$name"
	# shellcheck disable=SC2046
	install_at "$r" $(libs_of "$t") || die "cannot copy the libraries of $t"
	echo "$name" >>"$r/tests.list"
done
[ "$mode" = script ] && install -m 755 "$script" "$r/tests/script.sh"
[ "$use_kmod" = 1 ] && cp "$kmod" "$r/goro.ko"
install -m 755 "$here/init.sh" "$r/init"
# The environment travels as K=V words in single quotes.
env_words=""
set -f
for kv in $envs; do
	case "$kv" in
	*"'"*) die "--env: $kv: no single quotes, please" ;;
	[A-Za-z_]*=*) env_words="$env_words${env_words:+ }$kv" ;;
	*) die "--env: $kv is not K=V" ;;
	esac
done
set +f
cat >"$r/etc/goro-vm.conf" <<EOF
VM_KMOD=$use_kmod
VM_MODE=$( [ "$mode" = script ] && echo script || echo tests )
VM_ENV='$env_words'
VM_TEST_TIMEOUT=$test_timeout
EOF
pack "$r" "$work/run.cpio.gz" 1 || die "cannot pack the run archive"
cat "$base" "$work/run.cpio.gz" >"$work/initrd.cpio.gz"
t_packed=$(date +%s.%N)

# Boot.  The console is the serial port on stdout; timeout sends TERM,
# then KILL 5 s later, and exits 124 when the time ran out.
raw=$work/console.raw
# shellcheck disable=SC2054
qemu=(qemu-system-x86_64 -nographic -no-reboot -m 1024 -smp 2 -cpu max
	-kernel "$vmlinuz" -initrd "$work/initrd.cpio.gz"
	-append "console=ttyS0 panic=-1 oops=panic quiet loglevel=4")
log=$work/console.log
boot() {
	if [ "$verbose" = 1 ]; then
		timeout -k 5 "$timeout" "${qemu[@]}" </dev/null 2>&1 | tee "$raw"
		qrc=${PIPESTATUS[0]}
	else
		timeout -k 5 "$timeout" "${qemu[@]}" </dev/null >"$raw" 2>&1
		qrc=$?
	fi
	tr -d '\r' <"$raw" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' >"$log"
	rm -f "$raw"
}
boot
# The stale-int3 race of qemu's multi-threaded TCG (init.sh's one_cpu)
# also hits the kernel's own static-key patching while it boots, before
# /init and goro.ko (once in the 6.12 runs of 2026-12-07, at
# sched_clock_cpu): boot once more, keeping the first console.
if ! grep -aq '^@@VM booted ' "$log" && grep -aq 'Oops: int3' "$log"; then
	mv "$log" "$work/console.first.log"
	echo "run-vm: the kernel hit a stale int3 while booting (qemu TCG, before /init): booting again" >&2
	boot
fi
t_end=$(date +%s.%N)

pass=0 fail=0 skip=0 problems=""
# problem MSG: one failure the summary explains.
problem() {
	problems="$problems  $*"$'\n'
	fail=$((fail + 1))
}
# detail TEXT: lines that explain the problem above them.
detail() {
	# shellcheck disable=SC2001
	[ -z "$1" ] || problems="$problems$(sed 's/^/    /' <<<"$1")"$'\n'
}
has() { grep -aq "$@" "$log"; }

# @@VM lines are written by init.sh; see there for their grammar.
stuck=$(sed -n 's/^@@VM stuck //p' "$log")
[ -z "$stuck" ] || problem "stuck in the kernel: $stuck (blocked tasks in the dmesg dump)"
[ "$qrc" = 124 ] || [ "$qrc" = 137 ] && problem "timeout: the VM ran for more than ${timeout}s and was killed"
if ! has '^@@VM booted '; then
	problem "the VM never reached /init (qemu exit $qrc)"
elif ! has '^@@VM done'; then
	[ "$qrc" = 124 ] || [ "$qrc" = 137 ] ||
		problem "the VM stopped before the end of /init (qemu exit $qrc)"
fi
if [ "$use_kmod" = 1 ]; then
	if has '^@@VM insmod failed'; then
		problem "insmod goro.ko failed: $(sed -n 's/^@@VM insmod failed: //p' "$log" | head -n 1)"
		detail "$(sed -n '/^@@VM dmesg-begin/,/^@@VM dmesg-end/p' "$log" |
			grep -av '^@@VM' | tail -n 3)"
	fi
	has '^@@VM no /dev/goro' && problem "/dev/goro did not appear after insmod"
	if has '^@@VM rmmod failed'; then
		problem "rmmod goro failed: $(sed -n 's/^@@VM rmmod failed: //p' "$log" | head -n 1)"
	elif has '^@@VM insmod ok' && ! has '^@@VM rmmod ok' && has '^@@VM done' &&
		[ -z "$stuck" ]; then
		problem "rmmod goro did not report"
	fi
fi

# One line per test: NAME RC SECS TOTALS..., where RC is "none" when the
# test never ended and TOTALS is empty when it printed no Totals line.
results=$(awk '
	/^@@VM begin / { name = $3; tot = ""; rc = "none"; secs = "?"; open = 1; next }
	open && /^@@VM end / {
		rc = $4; sub(/^rc=/, "", rc); secs = $5; sub(/^secs=/, "", secs)
		print name, rc, secs, tot; open = 0; next
	}
	open && /^@@VM / { print name, "none", "?", tot; open = 0; next }
	open && /^# Totals: / { tot = $3 " " $4 " " $5 " " $6 " " $7 " " $8 }
	END { if (open) print name, "none", "?", tot }
' "$log")
# section NAME: the console lines of one test.
section() {
	awk -v n="$1" '$0 == "@@VM begin " n { on = 1; next }
		on && /^@@VM / { exit }
		on' "$log"
}
# num FIELD TOTALS: the count after "FIELD:" in a Totals line.
num() { sed -n "s/.*\\b$1:\\([0-9]*\\).*/\\1/p" <<<"$2"; }

benches=0
while read -r name rc secs totals; do
	[ -n "$name" ] || continue
	if [ "$mode" != tests ]; then
		# --bench and --script: the output is the result; exit status judges.
		if [ "$mode" = bench ]; then
			section "$name" | grep -a '^bench '
			benches=$((benches + 1))
		else
			section "$name"
		fi
		if [ "$rc" = 0 ]; then
			pass=$((pass + 1))
		else
			problem "$name: exit ${rc/none/(never ended)}"
			detail "$(section "$name" | tail -n 5 | sed 's/^/| /')"
		fi
		continue
	fi
	why=""
	[ "$rc" = 137 ] && [ "${secs%.*}" -ge "$test_timeout" ] 2>/dev/null &&
		why=" (SIGKILL at the ${test_timeout}s test timeout)"
	if [ -z "$totals" ]; then
		problem "$name: no Totals line, exit ${rc/none/(never ended)}$why"
		detail "$(section "$name" | tail -n 5 | sed 's/^/| /')"
		continue
	fi
	p=$(num pass "$totals") f=$(num fail "$totals") s=$(num skip "$totals")
	e=$(num error "$totals")
	pass=$((pass + p)) fail=$((fail + f + e)) skip=$((skip + s))
	printf '%-32s pass:%-4s fail:%-4s skip:%-4s %6s s  exit %s\n' \
		"$name" "$p" "$((f + e))" "$s" "$secs" "$rc"
	# A failed case with its harness diagnostics (file.c:LINE: lines,
	# timeouts, a fuzzer's seed, the runtime's fatal errors and panics),
	# so that a flaky failure can be told and replayed.
	[ $((f + e)) = 0 ] || section "$name" |
		grep -aE '^not ok|^# [^ ]+\.c:[0-9]+:|terminated|seed|step #|^(fatal error|panic|runtime):' |
		head -n 40 | sed 's/^/    /'
	[ "$rc" = 0 ] || [ $((f + e)) != 0 ] || problem "$name: exit $rc$why with no failed case"
done <<<"$results"
if [ "$mode" = bench ] && has '^@@VM booted ' && ! has '^@@VM tests not run'; then
	[ "$benches" = $# ] || problem "only $benches of $# benchmarks ran"
fi
if [ "$mode" = tests ] && has '^@@VM booted ' && ! has '^@@VM tests not run'; then
	n=$(grep -ac '^@@VM begin ' "$log")
	[ "$n" -ge $# ] || problem "only $n of $# tests started"
fi

# Kernel lines: everything with a printk timestamp, on the console (what
# went out before a panic) and in the dmesg dump (the rest); the taint of
# an out-of-tree unsigned module is expected.
bad='(^|[^A-Za-z_])BUG([^A-Za-z_]|$)|WARNING:|Oops|lockdep|possible (circular|recursive) locking'
# (kmemleak's own "new suspected memory leaks" lines are not here: the
# report read at the end is, object by object, below)
bad="$bad|inconsistent lock state|KASAN|UBSAN|refcount_t|general protection fault"
bad="$bad|Kernel panic|soft lockup|hard LOCKUP|blocked for more than|list_(add|del) corruption|Call Trace"
benign='RETBleed: WARNING|Spectre.*WARNING|MMIO Stale Data CPU bug|CPU bug present|RCU lockdep checking is enabled'
kbad=$(grep -aE '\[ *[0-9]+\.[0-9]{6}\] ' "$log" | grep -aE "$bad" | grep -avE "$benign" |
	sed 's/.*\(\[ *[0-9]*\.[0-9]*\] \)/\1/' | sort -u)
if [ -n "$kbad" ]; then
	problem "the kernel reported $(wc -l <<<"$kbad") bad line(s):"
	detail "$(head -n 20 <<<"$kbad")"
fi
# kmemleak's suspects, but for what the boot allocated before /init ran
# (a backtrace through start_kernel or the initcalls: the debug kernel's
# ACPI caches, say), which no test can have leaked.
leaks=$(sed -n '/^@@VM kmemleak-begin/,/^@@VM kmemleak-end/p' "$log" | awk '
	function flush() { if (obj != "" && !boot) { n++; if (n <= 3) printf "%s\n", obj } obj = ""; boot = 0 }
	/^unreferenced object/ { flush(); obj = $0; next }
	/start_kernel|kernel_init|do_one_initcall/ { boot = 1 }
	/comm "/ { if (obj != "") obj = obj " " $0 }
	END { flush(); print "total", n + 0 }')
nleaks=$(sed -n 's/^total //p' <<<"$leaks")
if [ "$nleaks" != 0 ]; then
	problem "kmemleak: $nleaks unreferenced object(s) allocated after boot"
	detail "$(grep -v '^total ' <<<"$leaks")"
fi

booted=$(sed -n 's/^@@VM booted \([^ ]*\) at \([0-9.]*\) s/\1, \/init after \2 s of guest time/p' "$log")
awk -v a="$t_start" -v b="$t_packed" -v c="$t_end" -v k="${booted:-not booted}" \
	'BEGIN { printf "kernel %s; initramfs %.1f s, qemu %.1f s\n", k, b - a, c - b }'

if [ -n "$problems" ]; then
	printf 'run-vm: FAILED:\n%s' "$problems"
	# The dmesg dump repeats the boot: keep what came after /init began.
	echo "--- last 40 lines of the console, boot messages left out ($log):"
	awk '/^@@VM dmesg-begin/ { print; dump = 1; boot = 1; next }
		/^@@VM dmesg-end/ { dump = 0 }
		dump && boot && /Run \/init as init process/ { boot = 0 }
		!(dump && boot)' "$log" | tail -n 40
	echo "--- full console log: $log"
fi
# A failed run keeps its console log; --keep keeps everything.
if [ "$keep" = 1 ]; then
	echo "work dir kept: $work"
elif [ -n "$problems" ]; then
	rm -rf "$work/root" "$work"/*.cpio.gz
else
	rm -rf "$work"
fi

if [ "$skip" -gt 0 ]; then
	echo "$tag: $pass passed, $fail failed, $skip skipped"
else
	echo "$tag: $pass passed, $fail failed"
fi
[ "$fail" = 0 ]
