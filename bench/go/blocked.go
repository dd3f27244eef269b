// blocked: Go twin of bench/blocked.c.  On GOMAXPROCS=1 a goroutine
// blocks its M in syscall.Read on a pipe made by syscall.Pipe (blocking
// fds, not the netpoller: entersyscall, and sysmon's retake hands the P
// off); the time until another goroutine runs (median of 20), then
// short channel round trips meanwhile.  Go has one mode; it prints it
// under both of goro's keys.
package main

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const reps = 20

func main() {
	const n = 200000
	runtime.GOMAXPROCS(1)
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		panic(err)
	}
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	start := time.Now()
	var blockedAt int64
	var wg sync.WaitGroup
	handoff := make([]int64, reps)
	var rtt time.Duration
	per := n / reps
	for r := 0; r < reps; r++ {
		wg.Add(1)
		go func() {
			var b [1]byte
			atomic.StoreInt64(&blockedAt, int64(time.Since(start)))
			if _, err := syscall.Read(fds[0], b[:]); err != nil {
				panic(err)
			}
			wg.Done()
		}()
		runtime.Gosched()
		t0 := time.Since(start)
		handoff[r] = int64(t0) - atomic.LoadInt64(&blockedAt)
		for i := 0; i < per; i++ {
			ping <- i
			<-pong
		}
		rtt += time.Since(start) - t0
		if _, err := syscall.Write(fds[1], []byte("x")); err != nil {
			panic(err)
		}
		wg.Wait()
	}
	close(ping)
	sort.Slice(handoff, func(a, b int) bool { return handoff[a] < handoff[b] })
	for _, mode := range []string{"wrapper", "plain"} {
		fmt.Printf("bench blocked/%s/handoff: go=%.1f ns\n", mode,
			float64(handoff[reps/2]))
		fmt.Printf("bench blocked/%s/rtt: go=%.1f ns/op\n", mode,
			float64(rtt.Nanoseconds())/float64(per*reps))
	}
}
