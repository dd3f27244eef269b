#!/bin/bash
# trace_test: record perf_workload (and examples/handoff, for the notes)
# with perf in the VM with goro.ko and the kernel sysmon on; check that
# every goro:* tracepoint and every sdt_libgoro probe fired, and that
# tools/goro-trace turns the recording into a Chrome trace with P, M
# and goroutine tracks, and that perf record -g unwinds a goroutine's
# user function cleanly through the switcher.  A host-side test: it boots its own VM (~1 min).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
b=$top/build
n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
bad() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n $1"; }
d=$(mktemp -d)
# TRACE_TEST_KEEP=1 keeps the VM's log and the converted trace (for
# the samples in Documentation/perf.rst)
if [ -n "${TRACE_TEST_KEEP:-}" ]; then echo "# kept in $d"; else trap 'rm -rf "$d"' EXIT; fi
echo "TAP version 13"

cat >"$d/vm.sh" <<'EOS'
#!/bin/sh
w=/tests/perf_workload
perf buildid-cache --add $w
perf probe -q -x $w -a 'sdt_libgoro:*' || echo "@@perf probe failed"
# -a: goro:preempt and goro:handoff come from the kernel sysmon's timer,
# in interrupt context on whatever CPU; a per-process recording keeps
# only those that interrupt one of the workload's threads
GORODEBUG=kmodsysmon=1 perf record -a -q -e 'goro:*' -e 'sdt_libgoro:*' \
	-o /tmp/w.data -- $w
perf record -q -e 'goro:*' -o /tmp/h.data -- /tests/handoff >/dev/null
perf script -i /tmp/w.data >/tmp/w.txt 2>/dev/null
perf script -i /tmp/h.data >/tmp/h.txt 2>/dev/null
echo "@@COUNTS-BEGIN"
cat /tmp/w.txt /tmp/h.txt | awk '{ for (i = 1; i <= NF; i++)
	if ($i ~ /^(goro|sdt_libgoro):[a-z_]+:$/) { sub(/:$/, "", $i); c[$i]++ } }
	END { for (k in c) print k, c[k] }'
echo "@@COUNTS-END"
echo "@@FIRST-BEGIN"
awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^sdt_libgoro:[a-z_]+:$/ && !s[$i]++) print }' /tmp/w.txt
echo "@@FIRST-END"
echo "@@TRACE-BEGIN"
head -n 3000 /tmp/w.txt
echo "@@TRACE-END"
# perf -g: the spinner goroutine's call chains, from spinner outwards
GORODEBUG=kmodsysmon=1 perf record -q -g -e cpu-clock -o /tmp/g.data -- $w \
	>/dev/null
echo "@@CHAINS-BEGIN"
perf script -i /tmp/g.data -F ip,sym 2>/dev/null | awk '
	/^[ \t]*$/ { if (s != "") c[s]++; s = ""; on = 0; next }
	{ if ($2 == "spinner") on = 1; if (on) s = s (s == "" ? "" : ";") $2 }
	END { if (s != "") c[s]++; for (k in c) print c[k], k }'
echo "@@CHAINS-END"
EOS

"$top/selftests/vm/run-vm.sh" --kernel "${KERNEL:-6.1}" --script "$d/vm.sh" \
	"$b/selftests/perf/perf_workload" "$b/examples/handoff" >"$d/log" 2>&1
rc=$?
if [ $rc = 0 ] && grep -q 'perf_workload: done' "$d/log"; then
	ok "perf recorded the workload in the VM"
else
	bad "VM run failed (exit $rc)"
	sed 's/^/# /' "$d/log" | tail -n 40
fi
sed -n '/@@COUNTS-BEGIN/,/@@COUNTS-END/p' "$d/log" | tr -d '\r' >"$d/counts"

# Every tracepoint of trace.h and every probe of the library.
tps=$(grep -o '^TRACE_EVENT([a-z_]*' "$top/kmod/trace.h" | sed 's/TRACE_EVENT(//')
probes=$(readelf -n "$b/selftests/perf/perf_workload" 2>/dev/null |
	awk '/Provider: libgoro/ { getline; print $2 }' | sort -u)
[ -n "$probes" ] || bad "perf_workload carries no libgoro probes"
for e in $(printf 'goro:%s\n' $tps) $(printf 'sdt_libgoro:%s\n' $probes); do
	c=$(awk -v e="$e" '$1 == e { print $2 }' "$d/counts")
	if [ -n "$c" ] && [ "$c" -gt 0 ]; then ok "$e fired ($c)"; else bad "$e never fired"; fi
done

# Every probe's arguments decode: perf probe skips an argument whose
# location it cannot read (a global named %rip-relative, say), and the
# event then shows fewer argN= than the note declares.
sed -n '/@@FIRST-BEGIN/,/@@FIRST-END/p' "$d/log" | tr -d '\r' >"$d/args.txt"
readelf -n "$b/selftests/perf/perf_workload" 2>/dev/null | awk '
	/Provider: libgoro/ { getline; name = $2 }
	/Arguments:/ && name != "" { print name, NF - 1; name = "" }' | sort -u >"$d/nargs"
while read -r p want; do
	got=$(awk -v e="sdt_libgoro:$p:" '{ for (i = 1; i <= NF; i++) if ($i == e) {
		c = 0; for (j = i + 1; j <= NF; j++) if ($j ~ /^arg[0-9]+=/) c++
		print c; exit } }' "$d/args.txt")
	if [ -z "$got" ]; then
		continue	# never fired: said above
	elif [ "$got" = "$want" ]; then
		ok "sdt_libgoro:$p: all $want arguments decoded"
	else
		bad "sdt_libgoro:$p: $got of $want arguments decoded"
	fi
done <"$d/nargs"
# ... and says what it should: the workload keeps one object alive.
live=$(sed -n 's/.*sdt_libgoro:gc_end:.* arg3=\([0-9]*\).*/\1/p' "$d/args.txt" | head -n 1)
if [ "${live:-0}" -gt 0 ]; then
	ok "sdt_libgoro:gc_end: live bytes $live"
else
	bad "sdt_libgoro:gc_end: live bytes '${live:-}' (want > 0)"
fi

# perf record -g through the switcher: a user function on a goroutine
# stack unwinds to goro_gostart_tramp, the chain's clean end (arch.h).
sed -n '/@@CHAINS-BEGIN/,/@@CHAINS-END/p' "$d/log" | tr -d '\r' |
	grep -v '^@@' >"$d/chains"
read -r total clean < <(awk '{ t += $1 }
	$2 ~ /^spinner(;[a-z_][a-z_0-9.]*)*;goro_gostart_tramp(;\[unknown\])?$/ { c += $1 }
	END { print t + 0, c + 0 }' "$d/chains")
if [ "$total" -ge 5 ] && [ $((clean * 10)) -ge $((total * 9)) ]; then
	ok "perf -g: $clean of $total spinner samples unwind cleanly to goro_gostart_tramp"
else
	bad "perf -g: $clean of $total spinner samples unwind to goro_gostart_tramp"
	sed 's/^/# /' "$d/chains" | head -n 20
fi

sed -n '/@@TRACE-BEGIN/,/@@TRACE-END/p' "$d/log" | tr -d '\r' |
	grep -v '^@@' >"$d/trace.txt"
if "$top/tools/goro-trace" "$d/trace.txt" >"$d/trace.json" 2>"$d/conv.err" &&
   python3 - "$d/trace.json" <<'EOP'
import json, sys
t = json.load(open(sys.argv[1]))["traceEvents"]
names = {e["args"]["name"] for e in t if e.get("ph") == "M"}
gs = [e for e in t if e.get("ph") == "X" and e["name"].startswith("G")]
ps = [n for n in names if n.startswith("P")]
assert "Ps" in names and "Ms (threads)" in names, names
assert ps, "no P track"
assert len({e["args"]["goid"] for e in gs}) >= 4, "too few goroutines"
assert all(e["dur"] >= 0 for e in gs)
EOP
then
	ok "goro-trace made a Chrome trace with P, M and goroutine tracks"
else
	bad "goro-trace output is wrong"
	sed 's/^/# /' "$d/conv.err"
fi
echo "# Totals: pass:$((n - fails)) fail:$fails xfail:0 xpass:0 skip:0 error:0"
[ "$fails" = 0 ]
