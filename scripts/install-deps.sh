#!/bin/sh
# Installs what building and testing goro needs on Debian 12 (root), and
# nothing when it is all there already: one dpkg query, no network.
# The VM kernels (6.1 as linux-image-amd64, 6.12 as the second kernel) and
# their headers, qemu for the VM runner, busybox for the initramfs,
# linux-source-6.1 for kselftest_harness.h, liburing, perf, and Go and the
# Boehm GC for the benchmark twins.  --debug-kernel adds the kernel
# build tools.
set -eu

PKGS="build-essential pkg-config qemu-system-x86 linux-image-amd64 \
linux-headers-amd64 linux-image-6.12-amd64 linux-headers-6.12-amd64 \
busybox-static cpio xz-utils liburing-dev linux-perf linux-source-6.1 \
golang-go libgc-dev libmimalloc-dev libclang-rt-14-dev clang systemtap-sdt-dev python3 wrk"
# --debug-kernel: also what building a kernel needs (scripts/debug-kernel.sh)
[ "${1:-}" != --debug-kernel ] || PKGS="$PKGS flex bison bc libelf-dev libssl-dev"

missing=""
for p in $PKGS; do
	s=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$s" in
	ii*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing:$missing (run as root to install)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
