# bench-join.awk: join the outputs of a benchmark and its twin over
# rounds (scripts/bench.sh).  Arguments: goro-output go-output, once per
# round, in order.  A goro line is "bench KEY: goro=V UNIT", its twin's
# "bench KEY: go=V UNIT".  Prints per key, in the goro output's order:
#   bench KEY: goro=MEDIAN go=MEDIAN UNIT ratio=MEDIAN (MIN-MAX, N rounds)
# where the ratio's median and range are over the rounds that have both
# values (each round's two runs are seconds apart, so a ratio compares
# the runtimes in the same phase of the host).  A key without a twin
# value prints "(no twin)"; other "bench " lines of the goro output (a
# benchmark that carries its own twin) pass through from round 1.

# The median of the blank-separated numbers in s; lo and hi get the
# extremes.
function med(s,   a, n, i, j, t) {
	n = split(s, a, " ")
	for (i = 2; i <= n; i++)	# insertion sort: a few rounds
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
		}
	lo = a[1]; hi = a[n]
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}

FNR == 1 { f++; r = int((f + 1) / 2); isgo = !(f % 2) }

!isgo && /^bench [^:]*: goro=/ {
	key = $2; sub(/:$/, "", key); split($3, a, "=")
	if (!(key in unit)) { unit[key] = $4; order[n++] = key }
	g[key] = g[key] " " a[2]; gr[key, r] = a[2]
	next
}
!isgo && /^bench / { if (r == 1) print; next }
isgo && /^bench [^:]*: go=/ {
	key = $2; sub(/:$/, "", key); split($3, a, "=")
	t[key] = t[key] " " a[2]; tr[key, r] = a[2]
}

END {
	for (i = 0; i < n; i++) {
		k = order[i]; rs = ""; nr = 0
		for (j = 1; j <= r; j++)
			if (((k, j) in gr) && ((k, j) in tr) && tr[k, j] > 0) {
				rs = rs " " gr[k, j] / tr[k, j]; nr++
			}
		gm = med(g[k])
		if (!nr) {
			printf "bench %s: goro=%s %s (no twin)\n", k, gm, unit[k]
			continue
		}
		tm = med(t[k]); rm = med(rs)
		printf "bench %s: goro=%s go=%s %s ratio=%.2f (%.2f-%.2f, %d round%s)\n",
		       k, gm, tm, unit[k], rm, lo, hi, nr, (nr > 1 ? "s" : "")
	}
}
