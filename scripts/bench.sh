#!/bin/bash
# make bench [BENCH=name]: run each benchmark beside its twin and print one
# line per comparison:
#   bench pingpong/procs=1: goro=74.5 go=199.2 ns/op ratio=0.37 (0.36-0.52, 3 rounds) [line 70-78 ns]
# A goro benchmark prints "bench KEY: goro=V UNIT"; its Go twin
# bench/go/NAME.go prints "bench KEY: go=V UNIT" for the same keys, and
# the lines are joined here.  A benchmark that carries its own twin (the
# futex pair of mswitch) prints the whole line with ratio= itself.
# Benchmarks listed in VM_BENCH need goro.ko and run in the VM.
#
# Rounds.  This host's speed drifts by minutes (a phase in which moving
# a cache line between its two vCPUs is several times dearer), and a
# goro run and a Go run minutes apart compared the phases, not the
# runtimes.  So each pair runs BENCH_ROUNDS times (default 3), goro and
# Go alternating, and the line gives the medians of each side, the
# median of the per-round ratios (each round's two runs are seconds
# apart) and their range, and the range of a cache line's round trip
# between the CPUs measured around the rounds (bench/probe/lineprobe.c).
set -u
cd "$(dirname "$0")/.." || exit 1
only=${1:-}
rounds=${BENCH_ROUNDS:-3}
[ "$rounds" -ge 1 ] 2>/dev/null || rounds=1
make -s all >/dev/null || { echo "bench: build failed" >&2; exit 1; }
mkdir -p build/bench/go build/bench/out

bins=$(make -s print-BENCH_BINS)
vm_bins=$(make -s print-VM_BENCH)
want() { [ -z "$only" ] || [ "$(basename "$1")" = "$only" ]; }

join_lines() { # goro-output go-output, for each round
	awk -f scripts/bench-join.awk "$@"
}

# A cache line's round trip between two CPUs, in ns (bench/probe): taken
# before each round and after the last, and added to the lines as
# "[line MIN-MAX ns]", so that a ratio can be read against the host's
# phase (see bench/probe/lineprobe.c).
probe() { [ -x build/bench/probe/lineprobe ] && build/bench/probe/lineprobe 200000 2>/dev/null; }
with_probe() { # "ns ns ...": add their range to every line of stdin
	awk -v p="$1" 'BEGIN { n = split(p, a, " "); lo = hi = a[1]
		for (i = 2; i <= n; i++) { if (a[i] + 0 < lo + 0) lo = a[i]
			if (a[i] + 0 > hi + 0) hi = a[i] } }
		{ if (n) print $0 " [line " lo "-" hi " ns]"; else print }'
}

# The write tracking's cost per page (bench/probe/wpprobe.c), for the
# collector benchmarks' system time.
if [ -x build/bench/probe/wpprobe ] && { [ -z "$only" ] ||
	case " $(make -s print-GC_BENCH) " in *" $only "*) true ;; *) false ;; esac; }; then
	build/bench/probe/wpprobe
fi

for b in $bins; do
	want "$b" || continue
	case " $vm_bins " in *" $b "*) continue ;; esac
	name=$(basename "$b")
	twin=""
	if [ -f "bench/go/$name.go" ]; then
		(cd bench/go && go build -o "../../build/bench/go/$name" "$name.go") &&
			twin="build/bench/go/$name"
	fi
	files=() lines=""
	for r in $(seq "$rounds"); do
		out=build/bench/out/$name.goro.$r
		gout=build/bench/out/$name.go.$r
		lines="$lines $(probe)"
		"$b" >"$out" 2>&1 || { echo "bench $name: failed (see $out)"; continue 2; }
		: >"$gout"
		[ -n "$twin" ] && "$twin" >"$gout" 2>&1
		files+=("$out" "$gout")
	done
	lines="$lines $(probe)"
	join_lines "${files[@]}" | with_probe "$lines"
done

run_vm=""
for b in $vm_bins; do want "$b" && run_vm="$run_vm $b"; done
if [ -n "$run_vm" ]; then
	# shellcheck disable=SC2086
	selftests/vm/run-vm.sh --bench --kernel "${KERNEL:-6.1}" $run_vm | grep -a '^bench '
fi

# http: wrk against examples/httpd and its Go twin (scripts/bench-http.sh
# prints the per-run lines and the medians with the ratio to Go).
if [ -z "$only" ] || [ "$only" = http ]; then
	scripts/bench-http.sh "${BENCH_HTTP_ROUNDS:-3}"
fi
