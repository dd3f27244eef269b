// preempt: Go twin of bench/preempt.c: on GOMAXPROCS=1, a goroutine
// spinning with no calls beside one sleeping 1 ms 1000 times; the
// sleeper's worst and 99th-percentile wake-up delay (Go preempts the
// spinner asynchronously after its 10 ms forcePreemptNS).
package main

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

var sink uint64

func main() {
	const rounds = 1000
	runtime.GOMAXPROCS(1)
	var stop uint32
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		n := uint64(0)
		for atomic.LoadUint32(&stop) == 0 {
			n++
		}
		sink = n
		wg.Done()
	}()
	runtime.Gosched()
	delays := make([]int64, rounds)
	for i := range delays {
		t0 := time.Now()
		time.Sleep(time.Millisecond)
		delays[i] = time.Since(t0).Nanoseconds() - 1000000
	}
	atomic.StoreUint32(&stop, 1)
	wg.Wait()
	sort.Slice(delays, func(a, b int) bool { return delays[a] < delays[b] })
	fmt.Printf("bench preempt/worst: go=%.1f ns\n", float64(delays[rounds-1]))
	fmt.Printf("bench preempt/p99: go=%.1f ns\n", float64(delays[rounds*99/100]))
}
