// parked: Go twin of bench/parked.c.
package main

import (
	"fmt"
	"os"
	"sync"
)

func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	var size, res int64
	fmt.Sscanf(string(b), "%d %d", &size, &res)
	return res * int64(os.Getpagesize())
}

func run(n int) {
	var ready, gate, done sync.WaitGroup
	before := rss()
	gate.Add(1)
	ready.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			ready.Done()
			gate.Wait()
			done.Done()
		}()
	}
	ready.Wait()
	after := rss()
	gate.Done()
	done.Wait()
	fmt.Printf("bench parked/n=%d: go=%.1f B/goroutine\n", n,
		float64(after-before)/float64(n))
}

func main() {
	run(100000)
	run(1000000)
}
