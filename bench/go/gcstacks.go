// gcstacks: Go twin of bench/gcstacks.c (100 000 goroutines parked, each
// holding an object of its own, while two goroutines replace the slots
// of a 16 MiB table of 256-byte objects; the longest and the
// 99th-percentile GC pause).
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"
)

type obj struct {
	next    *obj
	payload [31]uint64
}

func newObj(v uint64) *obj {
	o := &obj{}
	for i := range o.payload {
		o.payload[i] = v + uint64(i)
	}
	return o
}

//go:noinline
func parker(i int, gate chan int, ready, done *sync.WaitGroup) {
	mine := newObj(uint64(i))
	var frame [512]byte
	frame[0] = 1
	ready.Done()
	<-gate
	if mine.payload[0] != uint64(i) || frame[0] != 1 {
		panic("parked object lost")
	}
	done.Done()
}

func main() {
	sec, ngor := 5, 100000
	if len(os.Args) > 1 {
		sec, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		ngor, _ = strconv.Atoi(os.Args[2])
	}
	runtime.GOMAXPROCS(2)
	nslot := 16 << 20 / 256
	table := make([]*obj, nslot)
	for i := range table {
		table[i] = newObj(uint64(i))
	}
	gate := make(chan int)
	var ready, done sync.WaitGroup
	ready.Add(ngor)
	for i := 0; i < ngor; i++ {
		go parker(i, gate, &ready, &done)
	}
	ready.Wait()
	runtime.GC()
	var st0, st1 runtime.MemStats
	runtime.ReadMemStats(&st0)
	end := time.Now().Add(time.Duration(sec) * time.Second)
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			half := nslot / 2
			base, i, n := g*half, 0, 0
			for n&4095 != 0 || time.Now().Before(end) {
				table[base+i] = newObj(uint64(n))
				if i++; i == half {
					i = 0
				}
				n++
			}
			wg.Done()
		}(g)
	}
	wg.Wait()
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
	maxp, p99 := 0.0, 0.0
	if n > 0 {
		maxp = float64(p[n-1]) / 1e3
		k := n * 99 / 100
		if k >= n {
			k = n - 1
		}
		p99 = float64(p[k]) / 1e3
	}
	fmt.Printf("bench gcstacks/maxpause: go=%.1f us\n", maxp)
	fmt.Printf("bench gcstacks/p99pause: go=%.1f us\n", p99)
	fmt.Printf("bench gcstacks/collections: go=%d n\n", n)
	done.Add(ngor)
	for i := 0; i < ngor; i++ {
		gate <- 0
	}
	done.Wait()
}
