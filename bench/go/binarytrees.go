// binarytrees: Go twin of bench/binarytrees.c (the Benchmarks Game
// program, one goroutine per depth).
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"
)

type node struct{ l, r *node }

func bottomUp(d int) *node {
	if d <= 0 {
		return &node{}
	}
	return &node{bottomUp(d - 1), bottomUp(d - 1)}
}

func (n *node) check() int {
	if n.l == nil {
		return 1
	}
	return 1 + n.l.check() + n.r.check()
}

func main() {
	n := 18
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	t0 := time.Now()
	const mindepth = 4
	fmt.Printf("stretch tree of depth %d\t check: %d\n", n+1, bottomUp(n+1).check())
	long := bottomUp(n)
	nd := (n-mindepth)/2 + 1
	sums := make([]int, nd)
	iters := make([]int, nd)
	var wg sync.WaitGroup
	for i := 0; i < nd; i++ {
		wg.Add(1)
		go func(i int) {
			d := mindepth + 2*i
			iters[i] = 1 << (n - d + mindepth)
			for k := 0; k < iters[i]; k++ {
				sums[i] += bottomUp(d).check()
			}
			wg.Done()
		}(i)
	}
	wg.Wait()
	for i := 0; i < nd; i++ {
		fmt.Printf("%d\t trees of depth %d\t check: %d\n", iters[i], mindepth+2*i, sums[i])
	}
	fmt.Printf("long lived tree of depth %d\t check: %d\n", n, long.check())
	el := time.Since(t0)
	var st runtime.MemStats
	runtime.ReadMemStats(&st)
	var maxp uint64
	for _, p := range st.PauseNs {
		if p > maxp {
			maxp = p
		}
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	_ = debug.SetGCPercent
	fmt.Printf("bench binarytrees/depth=%d/time: go=%.1f ms\n", n, float64(el.Nanoseconds())/1e6)
	fmt.Printf("bench binarytrees/depth=%d/rss: go=%.1f MiB\n", n, float64(ru.Maxrss)/1024)
	fmt.Printf("bench binarytrees/depth=%d/maxpause: go=%.1f us\n", n, float64(maxp)/1e3)
}
