// pingpong: Go twin of bench/pingpong.c.
package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

func run(procs, n int) {
	runtime.GOMAXPROCS(procs)
	ping := make(chan int)
	pong := make(chan int)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		wg.Done()
	}()
	v := 0
	t0 := time.Now()
	for i := 0; i < n; i++ {
		ping <- v
		v = <-pong
	}
	fmt.Printf("bench pingpong/procs=%d: go=%.1f ns/op\n", procs,
		float64(time.Since(t0).Nanoseconds())/float64(n))
	if v != n {
		panic("lost values")
	}
	close(ping)
	wg.Wait()
}

func main() {
	run(1, 1000000)
	run(2, 1000000)
}
