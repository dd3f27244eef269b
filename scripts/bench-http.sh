#!/bin/bash
# scripts/bench-http.sh [ROUNDS]: wrk against examples/httpd (io_uring,
# then epoll) and its Go twin bench/go/httpd.go, interleaved, ROUNDS
# times (default 5), on loopback: each run is
#   wrk -t1 -c64 -dSECS --latency http://127.0.0.1:PORT/
# (BENCH_HTTP_SECONDS, default 3).  Prints a line per run, then per
# server the median and range of requests/s, of the server's CPU time
# per request (utime+stime from /proc around the run) and of the
# per-round ratio to Go.  GORODEBUG given is passed to the goro server.
set -u
cd "$(dirname "$0")/.."
rounds=${1:-5}
secs=${BENCH_HTTP_SECONDS:-3}
make -s all >/dev/null || { echo "bench-http: build failed" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench-http: wrk missing" >&2; exit 1; }
mkdir -p build/bench/go
(cd bench/go && go build -o ../../build/bench/go/httpd httpd.go) || exit 1
tck=$(getconf CLK_TCK)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
port=$((20000 + $$ % 20000))

cpu_ticks() { # pid: utime+stime
	awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

one() { # label cmd...
	local label=$1 pid t0 t1 res rps n
	shift
	port=$((port + 1))
	"$@" "tcp4:127.0.0.1:$port" >/dev/null 2>&1 &
	pid=$!
	sleep 0.3
	kill -0 $pid 2>/dev/null || { echo "bench-http: $label did not start" >&2; exit 1; }
	t0=$(cpu_ticks $pid)
	res=$(wrk -t1 -c64 -d"${secs}s" --latency "http://127.0.0.1:$port/" 2>&1)
	t1=$(cpu_ticks $pid)
	kill $pid; wait $pid 2>/dev/null
	rps=$(echo "$res" | awk '/^Requests\/sec/ { print $2 }')
	n=$(echo "$res" | awk '/requests in/ { print $1 }')
	echo "$res" | awk -v l="$label" -v r="$rps" -v n="$n" \
		-v c="$(( (t1 - t0) * 1000000 / tck ))" '
		/^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
		END { printf "http %-6s rps=%s cpu=%.2f p50=%s p99=%s\n", l, r,
		      (n > 0 ? c / n : 0), p50, p99 }' | tee -a "$out"
}

for r in $(seq "$rounds"); do
	one uring env GORODEBUG="${GORODEBUG:-}" build/examples/httpd
	one epoll env GORODEBUG="${GORODEBUG:+$GORODEBUG,}netpoll=epoll" build/examples/httpd
	one go build/bench/go/httpd
done
python3 - "$out" <<'PY'
import re, statistics as st, sys
runs = [dict(re.findall(r'(\w+)=(\S+)', l), label=l.split()[1])
        for l in open(sys.argv[1])]
go = [float(r['rps']) for r in runs if r['label'] == 'go']
for lab in ('uring', 'epoll', 'go'):
    rs = [r for r in runs if r['label'] == lab]
    rps = [float(r['rps']) for r in rs]
    cpu = [float(r['cpu']) for r in rs]
    line = "http %-6s rps median %.0f [%.0f..%.0f], cpu %.2f [%.2f..%.2f] us/req" % (
        lab, st.median(rps), min(rps), max(rps), st.median(cpu), min(cpu), max(cpu))
    if lab != 'go' and len(go) == len(rps):
        ratio = [a / b for a, b in zip(rps, go)]
        line += ", /go %.2f [%.2f..%.2f]" % (st.median(ratio), min(ratio), max(ratio))
    print(line)
PY
