#!/bin/sh
# Prints the kernel build tree and the vmlinuz of a VM kernel series
# ("6.1" or "6.12"): the newest installed linux-headers-<series>.*-amd64;
# "6.1-debug" is the debug kernel scripts/debug-kernel.sh builds.
#   kdir.sh 6.1        -> /usr/src/linux-headers-6.1.0-56-amd64
#   kdir.sh 6.1 image  -> /boot/vmlinuz-6.1.0-56-amd64
set -eu
series=${1:-6.1}
if [ "$series" = 6.1-debug ]; then
	tree=${GORO_DEBUG_KERNEL:-/var/cache/goro/linux-6.1-debug}
	[ -s "$tree/arch/x86/boot/bzImage" ] ||
		{ echo "kdir: no debug kernel in $tree (scripts/debug-kernel.sh)" >&2; exit 1; }
	if [ "${2:-}" = image ]; then
		echo "$tree/arch/x86/boot/bzImage"
	else
		echo "$tree"
	fi
	exit 0
fi
hdr=$(ls -d /usr/src/linux-headers-"$series".*-amd64 2>/dev/null | sort -V | tail -n 1)
[ -n "$hdr" ] || { echo "kdir: no headers for $series" >&2; exit 1; }
if [ "${2:-}" = image ]; then
	rel=${hdr#/usr/src/linux-headers-}
	echo "/boot/vmlinuz-$rel"
else
	echo "$hdr"
fi
