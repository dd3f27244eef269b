#!/bin/bash
# bench_join_test: scripts/bench-join.awk, which make bench uses to join
# a benchmark's rounds with its twin's, on made-up outputs: medians of
# each side, the median and range of the per-round ratios, keys without
# a twin, pass-through lines.  Prints kselftest TAP with a "# Totals:"
# line.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
n=0 fails=0
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
echo "TAP version 13"

# expect NAME WANT FILES...: the joined output must be exactly WANT
expect() {
	local name=$1 want=$2 got
	shift 2
	got=$(awk -f "$top/scripts/bench-join.awk" "$@" 2>&1)
	n=$((n + 1))
	if [ "$got" = "$want" ]; then
		echo "ok $n $name"
	else
		fails=$((fails + 1))
		echo "not ok $n $name"
		printf '# want: %s\n# got:  %s\n' "$want" "$got"
	fi
}

w() { printf '%s\n' "${@:2}" >"$d/$1"; }

w g1 "bench x/procs=1: goro=10 ns/op" "bench y: goro=5 B"
w t1 "bench x/procs=1: go=20 ns/op"
w g2 "bench x/procs=1: goro=30 ns/op" "bench y: goro=7 B"
w t2 "bench x/procs=1: go=40 ns/op"
w g3 "bench x/procs=1: goro=12 ns/op" "bench y: goro=6 B"
w t3 "bench x/procs=1: go=12 ns/op"
expect "three rounds: medians, median ratio and its range" \
"bench x/procs=1: goro=12 go=20 ns/op ratio=0.75 (0.50-1.00, 3 rounds)
bench y: goro=6 B (no twin)" "$d/g1" "$d/t1" "$d/g2" "$d/t2" "$d/g3" "$d/t3"

expect "one round" \
"bench x/procs=1: goro=10 go=20 ns/op ratio=0.50 (0.50-0.50, 1 round)
bench y: goro=5 B (no twin)" "$d/g1" "$d/t1"

# the ratio is the median of per-round ratios, not of the medians:
# goro 1, 100, 4 against go 2, 10, 100 -> ratios 0.5, 10, 0.04
w g4 "bench z: goro=1 ms"
w t4 "bench z: go=2 ms"
w g5 "bench z: goro=100 ms"
w t5 "bench z: go=10 ms"
w g6 "bench z: goro=4 ms"
w t6 "bench z: go=100 ms"
expect "ratio from the rounds, pairwise" \
"bench z: goro=4 go=10 ms ratio=0.50 (0.04-10.00, 3 rounds)" \
	"$d/g4" "$d/t4" "$d/g5" "$d/t5" "$d/g6" "$d/t6"

# a round whose twin printed nothing (failed) is left out of the ratios;
# an even count takes the mean of the middle two: goro 1, 8, 4 (median
# 4), go 2, -, 10 (median 6), ratios 0.5 and 0.4 (median 0.45)
w t0
w g7 "bench z: goro=8 ms"
expect "even count, a round without twin" \
"bench z: goro=4 go=6 ms ratio=0.45 (0.40-0.50, 2 rounds)" \
	"$d/g4" "$d/t4" "$d/g7" "$d/t0" "$d/g6" "$d/t5"

w g8 "bench m: switch=3 futex=6 ns/op ratio=0.50" "bench k: goro=2 ns"
w t8 "bench k: go=4 ns"
expect "lines that carry their own twin pass through once" \
"bench m: switch=3 futex=6 ns/op ratio=0.50
bench k: goro=2 go=4 ns ratio=0.50 (0.50-0.50, 2 rounds)" \
	"$d/g8" "$d/t8" "$d/g8" "$d/t8"

echo "1..$n"
echo "# Totals: pass:$((n - fails)) fail:$fails xfail:0 xpass:0 skip:0 error:0"
[ "$fails" = 0 ]
