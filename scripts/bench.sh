#!/bin/bash
# make bench [BENCH=name]: run each benchmark beside its twin and print one
# line per comparison:
#   bench pingpong/procs=1: goro=38.2 go=151.0 ns/op ratio=0.25
# A goro benchmark prints "bench KEY: goro=V UNIT"; its Go twin
# bench/go/NAME.go prints "bench KEY: go=V UNIT" for the same keys, and
# the lines are joined here.  A benchmark that carries its own twin (the
# futex pair of mswitch) prints the whole line with ratio= itself.
# Benchmarks listed in VM_BENCH need goro.ko and run in the VM.
set -u
cd "$(dirname "$0")/.."
only=${1:-}
make -s all >/dev/null || { echo "bench: build failed" >&2; exit 1; }
mkdir -p build/bench/go build/bench/out

bins=$(make -s print-BENCH_BINS)
vm_bins=$(make -s print-VM_BENCH)
want() { [ -z "$only" ] || [ "$(basename "$1")" = "$only" ]; }

join_lines() { # goro-output go-output
	awk '
	FNR == NR { if (match($0, /^bench [^:]*: goro=/)) {
			key = $2; sub(/:$/, "", key)
			split($3, a, "="); g[key] = a[2]; unit[key] = $4; order[n++] = key }
		else if ($0 ~ /^bench /) print; next }
	/^bench [^:]*: go=/ { key = $2; sub(/:$/, "", key); split($3, a, "="); t[key] = a[2] }
	END { for (i = 0; i < n; i++) { k = order[i]
		if (k in t && t[k] > 0)
			printf "bench %s: goro=%s go=%s %s ratio=%.2f\n", k, g[k], t[k], unit[k], g[k] / t[k]
		else
			printf "bench %s: goro=%s %s (no twin)\n", k, g[k], unit[k] } }' "$1" "$2"
}

for b in $bins; do
	want "$b" || continue
	case " $vm_bins " in *" $b "*) continue ;; esac
	name=$(basename "$b")
	out=build/bench/out/$name.goro
	gout=build/bench/out/$name.go
	"$b" >"$out" 2>&1 || { echo "bench $name: failed (see $out)"; continue; }
	: >"$gout"
	if [ -f "bench/go/$name.go" ]; then
		(cd bench/go && go build -o "../../build/bench/go/$name" "$name.go") &&
			"build/bench/go/$name" >"$gout" 2>&1
	fi
	join_lines "$out" "$gout"
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
