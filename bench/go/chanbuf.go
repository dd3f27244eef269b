// chanbuf: Go twin of bench/chanbuf.c.
package main

import (
	"fmt"
	"runtime"
	"time"
)

func main() {
	const n = 10000000
	runtime.GOMAXPROCS(2)
	ch := make(chan int, 1024)
	done := make(chan int)
	t0 := time.Now()
	go func() {
		s := 0
		for v := range ch {
			s += v
		}
		done <- s
	}()
	for i := 0; i < n; i++ {
		ch <- i
	}
	close(ch)
	sum := <-done
	fmt.Printf("bench chanbuf/procs=2: go=%.1f ns/op\n",
		float64(time.Since(t0).Nanoseconds())/n)
	if sum != n*(n-1)/2 {
		panic("bad sum")
	}
}
