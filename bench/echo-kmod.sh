#!/bin/sh
# SPDX-License-Identifier: MIT
#
# echo-kmod.sh: bench/echo's goro server three ways in one VM boot, to
# compare goro.ko's paths for the idle M that waits for I/O (ratios only
# mean something within one run: the VM is TCG, its absolute numbers do
# not):
#
#   netpoll   default: the poller's fd bound with GORO_IOC_NETPOLL, the
#             idle M waits in M_PARK with GORO_PARK_NETPOLL
#   kpoll0    GORODEBUG=kmodnetpoll=0: goro.ko parks the other idle Ms,
#             the idle M blocks in io_uring_wait_cqe / epoll_wait
#   nokmod    GORODEBUG=kmod=0: futex parking, no goro.ko at all
#
# Usage (from the top of the tree, after make):
#   selftests/vm/run-vm.sh --kernel 6.1 --script bench/echo-kmod.sh \
#       build/bench/echo
# Lines: "bench echo-kmod/rps[/epoll]: netpoll=V kpoll0=V nokmod=V
# ratio=netpoll/kpoll0 ratio_nokmod=netpoll/nokmod".
set -u
secs=${BENCH_ECHO_SECONDS:-3}
out=/tmp/echo-kmod
mkdir -p $out
for mode in netpoll kpoll0 nokmod; do
	case $mode in
	netpoll) dbg="" ;;
	kpoll0) dbg="kmodnetpoll=0" ;;
	nokmod) dbg="kmod=0" ;;
	esac
	GORODEBUG=$dbg BENCH_ECHO_SECONDS=$secs /tests/echo >$out/$mode || exit 1
	cat $out/$mode
done
for key in rps rps/epoll p99 p99/epoll; do
	awk -v key="echo/$key:" '
		FNR == 1 { mode = FILENAME; sub(".*/", "", mode) }
		$2 == key { split($3, kv, "="); v[mode] = kv[2] }
		END {
			if (!v["kpoll0"] || !v["nokmod"])
				exit 1
			printf "bench echo-kmod/%s: netpoll=%s kpoll0=%s nokmod=%s ratio=%.2f ratio_nokmod=%.2f\n",
			       substr(key, 6, length(key) - 6), v["netpoll"],
			       v["kpoll0"], v["nokmod"], v["netpoll"] / v["kpoll0"],
			       v["netpoll"] / v["nokmod"]
		}' $out/netpoll $out/kpoll0 $out/nokmod || exit 1
done
