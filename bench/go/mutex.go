// mutex: Go twin of bench/mutex.c.
package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

func main() {
	const n = 5000000
	runtime.GOMAXPROCS(2)
	var mu sync.Mutex
	var wg sync.WaitGroup
	counter := 0
	t0 := time.Now()
	wg.Add(2)
	for k := 0; k < 2; k++ {
		go func() {
			for i := 0; i < n; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	if counter != 2*n {
		panic("lost increments")
	}
	fmt.Printf("bench mutex/procs=2: go=%.1f ns/op\n",
		float64(time.Since(t0).Nanoseconds())/(2*n))
}
