#!/bin/bash
# debug-kernel.sh: build Debian's linux-source-6.1 as a debug kernel for the
# VM suite (make check-debug): lockdep (PROVE_LOCKING), DEBUG_ATOMIC_SLEEP,
# KASAN and kmemleak, so that goro.ko's locking, sleeping in atomic
# context, memory safety and leaks are checked by the kernel itself.
#
# The tree is cached outside the repository, in $GORO_DEBUG_KERNEL
# (default /var/cache/goro/linux-6.1-debug; scripts/kdir.sh 6.1-debug
# finds it there), and rebuilt only when this script's config changes.
# The config is x86_64's small tinyconfig plus what the VM's /init, the
# tests and goro.ko need (below; ACPI, or qemu's second vCPU stays
# unseen): a full Debian config would take hours here, this one about
# ten minutes on two cores.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
tree=${GORO_DEBUG_KERNEL:-/var/cache/goro/linux-6.1-debug}
src=/usr/src/linux-source-6.1.tar.xz
jobs=${JOBS:-$(nproc)}

# What the VM needs besides tinyconfig, and the debug options.  KVM is
# there for PREEMPT_NOTIFIERS, which only it selects (goro.ko's sysmon).
fragment() {
	cat <<'EOF'
CONFIG_64BIT=y
CONFIG_SMP=y
CONFIG_NR_CPUS=8
CONFIG_HOTPLUG_CPU=y
CONFIG_PREEMPT_VOLUNTARY=y
CONFIG_LOCALVERSION="-goro-debug"
CONFIG_PRINTK=y
CONFIG_PRINTK_TIME=y
CONFIG_KALLSYMS=y
CONFIG_SLUB=y
CONFIG_X86_MPPARSE=y
CONFIG_ACPI=y
CONFIG_BUG=y
CONFIG_TTY=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_BLK_DEV_INITRD=y
CONFIG_RD_GZIP=y
CONFIG_BINFMT_ELF=y
CONFIG_BINFMT_SCRIPT=y
CONFIG_DEVTMPFS=y
CONFIG_PROC_FS=y
CONFIG_SYSFS=y
CONFIG_TMPFS=y
CONFIG_SHMEM=y
CONFIG_MULTIUSER=y
CONFIG_FUTEX=y
CONFIG_ADVISE_SYSCALLS=y
CONFIG_FILE_LOCKING=y
CONFIG_SYSCTL=y
CONFIG_PROC_SYSCTL=y
CONFIG_SECCOMP=y
CONFIG_SECCOMP_FILTER=y
CONFIG_CHECKPOINT_RESTORE=y
CONFIG_MEM_SOFT_DIRTY=y
CONFIG_PROC_PAGE_MONITOR=y
CONFIG_MEMBARRIER=y
CONFIG_RSEQ=y
CONFIG_EPOLL=y
CONFIG_SIGNALFD=y
CONFIG_TIMERFD=y
CONFIG_EVENTFD=y
CONFIG_AIO=y
CONFIG_IO_URING=y
CONFIG_POSIX_TIMERS=y
CONFIG_HIGH_RES_TIMERS=y
CONFIG_NO_HZ_IDLE=y
CONFIG_PERF_EVENTS=y
CONFIG_MODULES=y
CONFIG_MODULE_UNLOAD=y
CONFIG_MODULE_FORCE_UNLOAD=y
CONFIG_NET=y
CONFIG_INET=y
CONFIG_IPV6=y
CONFIG_UNIX=y
CONFIG_VIRTUALIZATION=y
CONFIG_KVM=y
CONFIG_KVM_INTEL=y
CONFIG_FTRACE=y
CONFIG_ENABLE_DEFAULT_TRACERS=y
CONFIG_DEBUG_FS=y
CONFIG_DEBUG_KERNEL=y
CONFIG_DEBUG_INFO_NONE=y
CONFIG_FRAME_POINTER=y
CONFIG_UNWINDER_FRAME_POINTER=y
CONFIG_PROVE_LOCKING=y
CONFIG_DEBUG_ATOMIC_SLEEP=y
CONFIG_DEBUG_LIST=y
CONFIG_KASAN=y
CONFIG_KASAN_GENERIC=y
CONFIG_KASAN_OUTLINE=y
CONFIG_DEBUG_KMEMLEAK=y
CONFIG_DEBUG_KMEMLEAK_MEM_POOL_SIZE=16000
# CONFIG_DEBUG_KMEMLEAK_DEFAULT_OFF is not set
CONFIG_SOFTLOCKUP_DETECTOR=y
CONFIG_DETECT_HUNG_TASK=y
CONFIG_DEFAULT_HUNG_TASK_TIMEOUT=60
EOF
}

key=$( { fragment; cat "$0"; } | md5sum | cut -c1-12)
if [ -s "$tree/arch/x86/boot/bzImage" ] && [ "$(cat "$tree/.goro-key" 2>/dev/null)" = "$key" ]; then
	echo "debug-kernel: $tree is up to date"
	exit 0
fi
[ -r "$src" ] || { echo "debug-kernel: no $src (apt-get install linux-source-6.1)" >&2; exit 1; }
for t in bc flex bison; do
	command -v $t >/dev/null || { echo "debug-kernel: $t missing (scripts/install-deps.sh --debug-kernel)" >&2; exit 1; }
done

echo "debug-kernel: building in $tree with $jobs jobs"
rm -rf "$tree"
mkdir -p "$(dirname "$tree")"
tmp=$(mktemp -d "$(dirname "$tree")/unpack.XXXXXX")
tar -xJf "$src" -C "$tmp"
mv "$tmp"/linux-source-6.1 "$tree"
rmdir "$tmp"
cd "$tree"
make -s tinyconfig
fragment >goro-debug.config
scripts/kconfig/merge_config.sh -m -O . .config goro-debug.config >/dev/null
make -s olddefconfig
# merge_config drops what Kconfig refuses; a missing debug option would
# make the whole run pointless, so insist on them.
for opt in PROVE_LOCKING DEBUG_ATOMIC_SLEEP KASAN DEBUG_KMEMLEAK PREEMPT_NOTIFIERS \
	   IO_URING MODULE_UNLOAD SERIAL_8250_CONSOLE BLK_DEV_INITRD HOTPLUG_CPU ACPI \
	   PRINTK_TIME ADVISE_SYSCALLS FILE_LOCKING SECCOMP_FILTER MEM_SOFT_DIRTY; do
	grep -q "^CONFIG_$opt=y" .config ||
		{ echo "debug-kernel: CONFIG_$opt did not stick" >&2; exit 1; }
done
make -s -j"$jobs" bzImage modules_prepare
make -s -j"$jobs" modules
echo "$key" >.goro-key
echo "debug-kernel: $tree/arch/x86/boot/bzImage ($(make -s kernelrelease))"
