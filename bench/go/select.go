// select: Go twin of bench/select.c.
package main

import (
	"fmt"
	"runtime"
	"time"
)

func main() {
	const n = 2000000
	const per = n / 4
	runtime.GOMAXPROCS(2)
	var chs [4]chan int
	for i := range chs {
		chs[i] = make(chan int)
	}
	t0 := time.Now()
	for i := range chs {
		go func(ch chan int) {
			for k := 0; k < per; k++ {
				ch <- k
			}
		}(chs[i])
	}
	sum := 0
	for k := 0; k < per*4; k++ {
		select {
		case v := <-chs[0]:
			sum += v
		case v := <-chs[1]:
			sum += v
		case v := <-chs[2]:
			sum += v
		case v := <-chs[3]:
			sum += v
		}
	}
	fmt.Printf("bench select/procs=2: go=%.1f ns/op\n",
		float64(time.Since(t0).Nanoseconds())/float64(per*4))
	if sum != 4*(per*(per-1)/2) {
		panic("bad sum")
	}
}
