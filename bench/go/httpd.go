// httpd: Go twin of examples/httpd.c - a net/http server answering GET /
// with the same 13-byte body, for scripts/bench-http.sh (wrk drives both).
package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
)

func main() {
	addr := "127.0.0.1:8080"
	if len(os.Args) > 1 {
		// examples/httpd's address form, "tcp4:HOST:PORT", works too
		addr = strings.TrimPrefix(os.Args[1], "tcp4:")
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("Hello, World!"))
	})
	if err := http.ListenAndServe(addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "httpd:", err)
		os.Exit(1)
	}
}
