// gcheap: Go twin of bench/gcheap.c (a ~1 GiB live heap of 256-byte
// objects under steady allocation on 2 Ps; the longest and the
// 99th-percentile GC pause).
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

type obj struct {
	next    *obj
	payload [31]uint64
}

func xorshift(r *uint64) uint64 {
	*r ^= *r << 13
	*r ^= *r >> 7
	*r ^= *r << 17
	return *r
}

func newObj(v uint64, next *obj) *obj {
	o := &obj{next: next}
	for i := range o.payload {
		o.payload[i] = v + uint64(i)
	}
	return o
}

func main() {
	sec, mib := 10, 1024
	if len(os.Args) > 1 {
		sec, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		mib, _ = strconv.Atoi(os.Args[2])
	}
	runtime.GOMAXPROCS(2)
	nslot := mib << 20 / 256
	table := make([]*obj, nslot)
	r := uint64(1)
	for i := range table {
		var next *obj
		if i > 0 {
			next = table[xorshift(&r)%uint64(i)]
		}
		table[i] = newObj(xorshift(&r), next)
	}
	runtime.GC()
	var st0, st1 runtime.MemStats
	runtime.ReadMemStats(&st0)
	var wg sync.WaitGroup
	allocs := make([]int, 2)
	t0 := time.Now()
	end := t0.Add(time.Duration(sec) * time.Second)
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			half := nslot / 2
			base, i, n := g*half, 0, 0
			for n&4095 != 0 || time.Now().Before(end) {
				table[base+i] = newObj(uint64(n), nil)
				if i++; i == half {
					i = 0
				}
				n++
			}
			allocs[g] = n
			wg.Done()
		}(g)
	}
	wg.Wait()
	el := time.Since(t0)
	runtime.ReadMemStats(&st1)
	n := int(st1.NumGC - st0.NumGC)
	if n > 256 {
		n = 256
	}
	p := make([]uint64, n)
	for i := 0; i < n; i++ {
		p[i] = st1.PauseNs[(int(st0.NumGC)+i)%256]
	}
	sort.Slice(p, func(i, j int) bool { return p[i] < p[j] })
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	maxp, p99 := 0.0, 0.0
	if n > 0 {
		maxp = float64(p[n-1]) / 1e3
		k := n * 99 / 100
		if k >= n {
			k = n - 1
		}
		p99 = float64(p[k]) / 1e3
	}
	fmt.Printf("bench gcheap/maxpause: go=%.1f us\n", maxp)
	fmt.Printf("bench gcheap/p99pause: go=%.1f us\n", p99)
	fmt.Printf("bench gcheap/collections: go=%d n\n", n)
	fmt.Printf("bench gcheap/alloc: go=%.1f ns/op\n", float64(el.Nanoseconds())/float64(allocs[0]+allocs[1]))
	fmt.Printf("bench gcheap/rss: go=%.1f MiB\n", float64(ru.Maxrss)/1024)
}
