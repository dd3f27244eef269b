#!/bin/busybox sh
# init.sh: /init of the goro test VM (PID 1, busybox sh).
#
# run-vm.sh packs this file as /init together with /etc/goro-vm.conf (the
# options of the run), goro.ko and the test binaries under /tests.  The
# host learns everything from the serial console, so every step prints a
# line starting with "@@VM " that run-vm.sh parses; a step that fails says
# so on such a line instead of stopping the VM, and the last steps (dmesg,
# "@@VM done", reboot) always run.  "reboot -f" ends qemu, which runs with
# -no-reboot.  Invariant: the "@@VM begin NAME" and "@@VM end NAME rc=N"
# markers of a test enclose all of its output.

/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
# Loopback for the network tests (the kernel leaves lo down).
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up 2>/dev/null

# VM_KMOD (1: insmod /goro.ko), VM_MODE (tests or script), VM_ENV (the
# tests' environment, K=V words), VM_TEST_TIMEOUT (seconds per test).
VM_KMOD=1 VM_MODE=tests VM_ENV="" VM_TEST_TIMEOUT=600
. /etc/goro-vm.conf

uptime_s() { cut -d' ' -f1 /proc/uptime; }

echo
echo "@@VM booted $(uname -r) at $(uptime_s) s"

kmemleak=/sys/kernel/debug/kmemleak
# Forget what the boot itself left behind: only leaks of the run count
# (run-vm.sh also leaves out suspects that the boot allocated: some turn
# unreferenced only later, after this clear).
[ -w $kmemleak ] && echo clear >$kmemleak

# The kernel sizes its orphaned-socket limit from memory: in a 1 GiB
# guest with KASAN's shadow it is a few hundred, and the net tests'
# churn of closed connections then meets resets ("TCP: too many
# orphaned sockets").  A host has tens of thousands: give the guest as
# many.
[ -w /proc/sys/net/ipv4/tcp_max_orphans ] &&
	echo 65536 >/proc/sys/net/ipv4/tcp_max_orphans

# one_cpu CMD...: CMD with every vCPU but cpu0 offline.  Loading and
# unloading goro.ko flip the kernel's preempt-notifier static key, which
# rewrites __schedule through int3 breakpoints; under qemu's
# multi-threaded TCG another vCPU now and then still executes a stale
# int3 after the rewrite is over ("Oops: int3" at __schedule+0x428, twice
# in about a hundred 6.12 runs, at insmod and at rmmod).  With one vCPU
# the code it rewrites is the code it runs, which TCG keeps exact.
one_cpu() {
	local c rc off=""

	for c in /sys/devices/system/cpu/cpu[1-9]*/online; do
		[ -w "$c" ] && [ "$(cat "$c")" = 1 ] && echo 0 >"$c" &&
			off="$off $c"
	done
	"$@"
	rc=$?
	for c in $off; do
		echo 1 >"$c"
	done
	return $rc
}

loaded=0
if [ "$VM_KMOD" = 1 ]; then
	if err=$(one_cpu insmod /goro.ko 2>&1); then
		loaded=1
		echo "@@VM insmod ok"
		[ -c /dev/goro ] || echo "@@VM no /dev/goro after insmod"
	else
		echo "@@VM insmod failed: $err"
	fi
fi

# dump_and_reboot: the last words of a VM that cannot go on.
dump_and_reboot() {
	echo "@@VM dmesg-begin"
	dmesg
	echo "@@VM dmesg-end"
	echo "@@VM done at $(uptime_s) s"
	sync
	reboot -f
}

# run_one NAME: /tests/NAME under the per-test timeout.  A test that
# SIGKILL cannot end is stuck in the kernel (goro.ko, most likely): the
# watchdog then dumps the blocked tasks (sysrq w) and dmesg and ends the
# VM, which is better for debugging than the host's timeout.
run_one() {
	local name="$1" start rc wd

	echo "@@VM begin $name"
	start=$(uptime_s)
	(
		sleep $((VM_TEST_TIMEOUT + 30))
		echo "@@VM stuck $name: SIGKILL did not end it in 30 s"
		echo w >/proc/sysrq-trigger
		dump_and_reboot
	) &
	wd=$!
	# shellcheck disable=SC2086
	(cd /tmp && exec timeout -s KILL "$VM_TEST_TIMEOUT" \
		env $VM_ENV "/tests/$name" </dev/null 2>&1)
	rc=$?
	kill $wd 2>/dev/null
	wait $wd 2>/dev/null
	echo "@@VM end $name rc=$rc secs=$(awk "BEGIN { print $(uptime_s) - $start }")"
}

if [ "$VM_KMOD" = 1 ] && [ $loaded = 0 ]; then
	echo "@@VM tests not run: goro.ko is not loaded"
elif [ "$VM_MODE" = script ]; then
	run_one script.sh
else
	while read -r name; do
		run_one "$name"
	done </tests.list
fi

if [ $loaded = 1 ]; then
	if err=$(one_cpu rmmod goro 2>&1); then
		echo "@@VM rmmod ok"
	else
		echo "@@VM rmmod failed: $err (refcnt $(cat /sys/module/goro/refcnt 2>/dev/null))"
	fi
fi

# kmemleak reports an object only once it is older than 5 s and was seen
# unreferenced by a scan; debug kernels only, Debian's have no kmemleak.
if [ -w $kmemleak ]; then
	sleep 6
	echo scan >$kmemleak
	echo "@@VM kmemleak-begin"
	cat $kmemleak
	echo "@@VM kmemleak-end"
fi

dump_and_reboot
