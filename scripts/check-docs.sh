#!/bin/sh
# Every GORO_IOC_* of the ABI header must have its entry in the ioctl
# documentation (STYLE.md item 15), and every function of libgoro's
# public header its mention in the API documentation.  Prints TAP like
# the selftests.
set -u
cd "$(dirname "$0")/.."
doc=Documentation/userspace-api/goro.rst
n=0 bad=0
echo "TAP version 13"
for ioc in $(grep -o '^#define GORO_IOC_[A-Z_]*' uapi/linux/goro.h | awk '{print $2}' | grep -v '^GORO_IOC_MAGIC$'); do
	n=$((n + 1))
	if grep -q "^$ioc\$" "$doc" 2>/dev/null || grep -q "^\.\. c:macro:: $ioc\$" "$doc" 2>/dev/null; then
		echo "ok $n $ioc documented"
	else
		echo "not ok $n $ioc has no entry in $doc"
		bad=$((bad + 1))
	fi
done
api=Documentation/api.rst
for fn in $(grep -o '\bgoro_[a-z_0-9]*(' libgoro/include/goro.h | tr -d '(' | sort -u); do
	n=$((n + 1))
	if grep -q "$fn\b" "$api"; then
		echo "ok $n $fn documented"
	else
		echo "not ok $n $fn is not in $api"
		bad=$((bad + 1))
	fi
done
echo "# Totals: pass:$((n - bad)) fail:$bad xfail:0 xpass:0 skip:0 error:0"
[ "$bad" = 0 ]
