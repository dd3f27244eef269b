// alloc: Go twin of bench/alloc.c.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

const window = 1024

func allocator(seed uint64, n int, wg *sync.WaitGroup) {
	ring := make([][]byte, window)
	r := seed*0x9e3779b97f4a7c15 + 1
	for i := 0; i < n; i++ {
		r ^= r << 13
		r ^= r >> 7
		r ^= r << 17
		size := 8 + (r%64)*8
		ring[i&(window-1)] = make([]byte, size)
	}
	wg.Done()
}

func main() {
	n := 20000000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	runtime.GOMAXPROCS(2)
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(2)
	go allocator(1, n, &wg)
	go allocator(2, n, &wg)
	wg.Wait()
	fmt.Printf("bench alloc/procs=2: go=%.1f ns/op\n",
		float64(time.Since(t0).Nanoseconds())/float64(2*n))
}
