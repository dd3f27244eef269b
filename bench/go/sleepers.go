// sleepers: Go twin of bench/sleepers.c.
package main

import (
	"fmt"
	"sync"
	"time"
)

func main() {
	const n = 100000
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			for k := 0; k < 10; k++ {
				time.Sleep(time.Millisecond)
			}
			wg.Done()
		}()
	}
	wg.Wait()
	fmt.Printf("bench sleepers/n=100000: go=%.1f ms\n",
		float64(time.Since(t0).Nanoseconds())/1e6)
}
