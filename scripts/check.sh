#!/bin/bash
# make check: build everything, run the native suite (no module), then the
# VM suite with goro.ko on each kernel series, and end with one line
# "N passed, N failed".  Counts are kselftest test cases (the harness's
# "# Totals:" line); a binary that dies without one counts as one failure,
# and so do a failed build and a failed VM run that reported nothing.
set -u
cd "$(dirname "$0")/.."

SERIES=${SERIES:-"6.1 6.12"}
NATIVE_TIMEOUT=${NATIVE_TIMEOUT:-900}
pass=0 fail=0 skip=0 digest=""
log_dir=build/check
mkdir -p "$log_dir"

note() { printf '== %s\n' "$*"; }
# remember TEXT: lines for the digest of failures printed last, because
# CI shows only the tail of this output.
remember() { [ -z "$1" ] || digest="$digest$1"$'\n'; }

# tally LOG EXIT NAME: add LOG's "# Totals:" counts; a crash is a failure.
tally() {
	local log=$1 rc=$2 name=$3 line p f s
	line=$(grep -a '^# Totals:' "$log" | tail -n 1)
	if [ -z "$line" ]; then
		echo "not ok - $name: exit $rc and no Totals line (see $log)"
		remember "$name: exit $rc and no Totals line: $(tail -n 2 "$log" | paste -sd ';')"
		fail=$((fail + 1))
		return
	fi
	p=$(sed -n 's/.* pass:\([0-9]*\).*/\1/p' <<<"$line")
	f=$(sed -n 's/.* fail:\([0-9]*\).*/\1/p' <<<"$line")
	s=$(sed -n 's/.* skip:\([0-9]*\).*/\1/p' <<<"$line")
	pass=$((pass + p)) skip=$((skip + s))
	fail=$((fail + f))
	if [ "$f" != 0 ]; then
		show_failures "$log"
		remember "$name: $(grep -aE '^not ok|^# [^ ]+\.c:[0-9]+:' "$log" | head -n 3 | paste -sd ';')"
	fi
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "not ok - $name: exit $rc with no failed case (see $log)"
		remember "$name: exit $rc with no failed case"
		fail=$((fail + 1))
	fi
	printf '%-60s pass:%s fail:%s skip:%s\n' "$name" "$p" "$f" "$s"
}

# show_failures LOG: the failed cases and the lines before each, so that the
# tail of the output alone says what failed.
show_failures() {
	grep -a -B8 '^ *\(# \)\?not ok' "$1" | grep -av '# SKIP' | tail -n 60
}

finish() {
	if [ -n "$digest" ]; then
		echo
		note "what failed"
		printf '%s' "$digest" | cut -c1-200 | head -n 16
	fi
	echo
	if [ "$skip" -gt 0 ]; then
		echo "$pass passed, $fail failed, $skip skipped"
	else
		echo "$pass passed, $fail failed"
	fi
	[ "$fail" = 0 ]
	exit $?
}

note "build"
if ! make -s all >"$log_dir/build.log" 2>&1; then
	tail -n 40 "$log_dir/build.log"
	echo "not ok - build failed (see $log_dir/build.log)"
	fail=$((fail + 1))
	finish
fi

note "documentation covers the ABI"
scripts/check-docs.sh >"$log_dir/docs.log" 2>&1
tally "$log_dir/docs.log" $? check-docs

note "native tests (no module)"
for t in $(make -s print-NATIVE_TESTS); do
	name=${t#"$PWD"/build/}; name=native/${name#"$PWD"/}
	log=$log_dir/$(tr / _ <<<"$name").log
	timeout "$NATIVE_TIMEOUT" "$t" >"$log" 2>&1
	tally "$log" $? "$name"
done

vm_tests=$(make -s print-VM_TESTS)
for s in $SERIES; do
	note "VM suite, kernel $s"
	log=$log_dir/vm-$s.log
	# shellcheck disable=SC2086
	selftests/vm/run-vm.sh --kernel "$s" $vm_tests >"$log" 2>&1
	rc=$?
	last=$(grep -a "^vm($s): " "$log" | tail -n 1)
	echo "${last:-vm($s): no summary (exit $rc), see $log}"
	p=$(sed -n 's/.*: \([0-9]*\) passed.*/\1/p' <<<"$last")
	f=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$last")
	sk=$(sed -n 's/.* \([0-9]*\) skipped.*/\1/p' <<<"$last")
	pass=$((pass + ${p:-0})) fail=$((fail + ${f:-0})) skip=$((skip + ${sk:-0}))
	if [ "${f:-0}" != 0 ]; then
		show_failures "$log"
		# run-vm's own account: the failed cases and the problems
		# (a panic, a timeout, kernel lines) that no case reports.
		remember "$(grep -aE '^[A-Za-z0-9_.-]+ +pass:[0-9]+ +fail:[1-9]|^not ok' "$log" | sed "s/^/vm($s) /" | head -n 4)"
		remember "$(sed -n '/^run-vm: FAILED:/,/^--- last 40/p' "$log" | grep -av '^--- last 40' |
			sed "s/^/vm($s) /" | head -n 12)"
	fi
	if [ "$rc" != 0 ] && [ "${f:-0}" = 0 ]; then
		echo "not ok - vm($s) failed (see $log)"
		tail -n 30 "$log"
		fail=$((fail + 1))
	fi
done

finish
