// spawn: Go twin of bench/spawn.c.
package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

func main() {
	const n = 1000000
	for procs := 1; procs <= 2; procs++ {
		runtime.GOMAXPROCS(procs)
		var wg sync.WaitGroup
		t0 := time.Now()
		wg.Add(n)
		for i := 0; i < n; i++ {
			go wg.Done()
		}
		wg.Wait()
		fmt.Printf("bench spawn/procs=%d: go=%.1f ns/op\n", procs,
			float64(time.Since(t0).Nanoseconds())/n)
	}
}
