#!/bin/bash
# make demo: build everything, run examples/demo.c (goroutines and
# channels) natively (no module: the futex fallback), then boot the VM
# with goro.ko, run it and examples/handoff.c (the raw ioctls) with the
# goro:* tracepoints on, and show what the module did.
set -eu
cd "$(dirname "$0")/.."
series=${KERNEL:-6.1}

echo "== building"
make -s all

ex=build/examples/demo
echo
echo "== natively, without goro.ko"
"$ex"

script=$(mktemp)
trap 'rm -f "$script"' EXIT
cat >"$script" <<EOS
#!/bin/sh
ex="/tests/demo /tests/handoff"
EOS
cat >>"$script" <<'EOS'
tr=/sys/kernel/tracing
echo "goro.ko loaded: $(cat /sys/module/goro/refcnt 2>/dev/null) users, /dev/goro $(ls -l /dev/goro | cut -c1-10)"
echo "tracepoints: $(ls $tr/events/goro | grep -v -e enable -e filter | tr '\n' ' ')"
echo 1 >$tr/events/goro/enable
for x in $ex; do
	echo "-- $x"
	$x || exit 1
done
echo 0 >$tr/events/goro/enable
echo "what goro.ko did (events from $tr/trace):"
for e in m_park m_unpark m_switch note_sleep note_wakeup note_clear; do
	printf '  goro:%-12s %6s\n' "$e" "$(grep -c " $e:" $tr/trace)"
done
echo "first events:"
grep -v '^#' $tr/trace | head -n 6 | sed 's/^ */  /'
EOS

echo
echo "== in the VM (kernel $series) with goro.ko"
selftests/vm/run-vm.sh --kernel "$series" --script "$script" "$ex" \
	build/examples/handoff
