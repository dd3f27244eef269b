// yield: Go twin of bench/yield.c.
package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

func main() {
	const n = 2000000
	runtime.GOMAXPROCS(1)
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(2)
	for k := 0; k < 2; k++ {
		go func() {
			for i := 0; i < n; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	fmt.Printf("bench yield/procs=1: go=%.1f ns/op\n",
		float64(time.Since(t0).Nanoseconds())/(2*n))
}
