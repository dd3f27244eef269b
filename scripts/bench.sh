#!/bin/bash
# make bench [BENCH=name]: run each benchmark beside its twin and print one
# line per comparison:
#   bench pingpong/procs=1: goro=38.2 go=151.0 ns/op ratio=0.25 (0.24-0.27, 3 rounds)
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
# apart) and their range.
set -u
cd "$(dirname "$0")/.."
only=${1:-}
rounds=${BENCH_ROUNDS:-3}
make -s all >/dev/null || { echo "bench: build failed" >&2; exit 1; }
mkdir -p build/bench/go build/bench/out

bins=$(make -s print-BENCH_BINS)
vm_bins=$(make -s print-VM_BENCH)
want() { [ -z "$only" ] || [ "$(basename "$1")" = "$only" ]; }

join_lines() { # goro-output go-output, for each round
	awk '
	function med(s,   a, n, i, j, t) {
		n = split(s, a, " ")
		for (i = 2; i <= n; i++)	# insertion sort: a few rounds
			for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
				t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		lo = a[1]; hi = a[n]
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	FNR == 1 { f++; r = int((f + 1) / 2); isgo = !(f % 2) }
	!isgo && /^bench [^:]*: goro=/ {
		key = $2; sub(/:$/, "", key); split($3, a, "=")
		if (!(key in unit)) { unit[key] = $4; order[n++] = key }
		g[key] = g[key] " " a[2]; gr[key, r] = a[2]; next }
	!isgo && /^bench / { if (r == 1) print; next }
	isgo && /^bench [^:]*: go=/ {
		key = $2; sub(/:$/, "", key); split($3, a, "=")
		t[key] = t[key] " " a[2]; tr[key, r] = a[2] }
	END { for (i = 0; i < n; i++) { k = order[i]; rs = ""; nr = 0
		for (j = 1; j <= r; j++)
			if ((k, j) in gr && (k, j) in tr && tr[k, j] > 0) {
				rs = rs " " gr[k, j] / tr[k, j]; nr++ }
		gm = med(g[k])
		if (!nr) { printf "bench %s: goro=%s %s (no twin)\n", k, gm, unit[k]; continue }
		tm = med(t[k]); rm = med(rs)
		printf "bench %s: goro=%s go=%s %s ratio=%.2f (%.2f-%.2f, %d round%s)\n",
		       k, gm, tm, unit[k], rm, lo, hi, nr, (nr > 1 ? "s" : "") } }' "$@"
}

for b in $bins; do
	want "$b" || continue
	case " $vm_bins " in *" $b "*) continue ;; esac
	name=$(basename "$b")
	twin=""
	if [ -f "bench/go/$name.go" ]; then
		(cd bench/go && go build -o "../../build/bench/go/$name" "$name.go") &&
			twin="build/bench/go/$name"
	fi
	files=()
	for r in $(seq "$rounds"); do
		out=build/bench/out/$name.goro.$r
		gout=build/bench/out/$name.go.$r
		"$b" >"$out" 2>&1 || { echo "bench $name: failed (see $out)"; continue 2; }
		: >"$gout"
		[ -n "$twin" ] && "$twin" >"$gout" 2>&1
		files+=("$out" "$gout")
	done
	join_lines "${files[@]}"
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
