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
cp "$tmp/$top/tools/testing/selftests/kselftest_harness.h" \
   "$tmp/$top/tools/testing/selftests/kselftest.h" "$out/"
