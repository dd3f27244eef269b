// accept: Go twin of bench/accept.c - a net server that accepts, answers
// one 16-byte request (its first byte inverted) and closes, one goroutine
// per connection, driven by the same C client (build/bench/accept
// --client), which prints the go= lines.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
)

func serve(c net.Conn) {
	buf := make([]byte, 16)
	if _, err := io.ReadFull(c, buf); err == nil {
		buf[0] = ^buf[0]
		c.Write(buf)
	}
	c.Close()
}

func main() {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	client := os.Getenv("GORO_ACCEPT_CLIENT")
	if client == "" {
		client = "build/bench/accept"
	}
	cmd := exec.Command(client, "--client", ln.Addr().String(), "go")
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "accept: client:", err)
		os.Exit(1)
	}
}
