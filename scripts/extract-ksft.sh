#!/bin/sh
# Extracts kselftest_harness.h and kselftest.h from Debian's
# linux-source-6.1 tarball into $1.  Nothing of it is committed.
set -eu
out=$1
tarball=$(ls /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n 1)
[ -n "$tarball" ] || { echo "extract-ksft: linux-source-6.1 is not installed" >&2; exit 1; }
top=$(basename "$tarball" | sed 's/\.tar\..*//')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xf "$tarball" -C "$tmp" \
	"$top/tools/testing/selftests/kselftest_harness.h" \
	"$top/tools/testing/selftests/kselftest.h"
mkdir -p "$out"
# One change to the harness: KSFT_TIMEOUT_MULT=N in the environment
# multiplies every test's timeout (a debug kernel, where KASAN and
# lockdep make each system call many times slower: make check-debug).
# Later kernels' harnesses have no such knob; the sed fails loudly if
# the line it edits ever changes.
h=$tmp/$top/tools/testing/selftests/kselftest_harness.h
grep -q '^	alarm(t->timeout);$' "$h" ||
	{ echo "extract-ksft: the harness's alarm() line changed" >&2; exit 1; }
sed -i 's/^	alarm(t->timeout);$/	alarm(t->timeout * (getenv("KSFT_TIMEOUT_MULT") ?\
		atoi(getenv("KSFT_TIMEOUT_MULT")) ?: 1 : 1));/' "$h"
cp "$h" "$tmp/$top/tools/testing/selftests/kselftest.h" "$out/"
