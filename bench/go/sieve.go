// sieve: Go twin of bench/sieve.c.
package main

import (
	"fmt"
	"time"
)

func generate(ch chan<- int) {
	for i := 2; ; i++ {
		ch <- i
	}
}

func filter(in <-chan int, out chan<- int, prime int) {
	for {
		v := <-in
		if v%prime != 0 {
			out <- v
		}
	}
}

func main() {
	const nprimes = 5000
	t0 := time.Now()
	ch := make(chan int)
	go generate(ch)
	p := 0
	for i := 0; i < nprimes; i++ {
		p = <-ch
		out := make(chan int)
		go filter(ch, out, p)
		ch = out
	}
	fmt.Printf("bench sieve/5000: go=%.1f ms\n",
		float64(time.Since(t0).Nanoseconds())/1e6)
	if p != 48611 {
		panic("wrong prime")
	}
}
