// echo: Go twin of bench/echo.c - a net echo server, one goroutine per
// connection, driven by the same C client (build/bench/echo --client),
// which prints the go= lines.
package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
)

func serve(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			break
		}
		if _, err := c.Write(buf[:n]); err != nil {
			break
		}
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
	client := os.Getenv("GORO_ECHO_CLIENT")
	if client == "" {
		client = "build/bench/echo"
	}
	cmd := exec.Command(client, "--client", ln.Addr().String(), "go")
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "echo: client:", err)
		os.Exit(1)
	}
}
