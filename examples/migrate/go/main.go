// A Go net/http server (standard library only) as a sockherd worker.
//
// Before, it called http.ListenAndServe(":8080", handler), which binds the
// port itself. Now it takes the listening socket from sockherd at fd 3 with
// net.FileListener, sends READY=1 to NOTIFY_SOCKET once it has it, and on
// SIGTERM drains without racing keep-alive clients: it stops accepting,
// answers from then on with "Connection: close", gives idle keep-alive
// connections 2 s to send one more request, then lets srv.Shutdown close
// what stayed idle and wait for the requests in flight, and exits 0. Build
// and run:
//
//	cd examples/migrate/go && go build -o hello-go . && cd -
//	sockherd -l 127.0.0.1:8080 -w 4 --ready notify -- examples/migrate/go/hello-go
//
// "/slow" answers after one second, to watch a graceful stop finish it.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// listener takes the socket passed with the socket activation protocol.
func listener() net.Listener {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) || os.Getenv("LISTEN_FDS") != "1" {
		log.Fatal("no listening socket passed (LISTEN_FDS/LISTEN_PID); run me under sockherd")
	}
	for _, name := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(name) // not for our child processes
	}
	f := os.NewFile(3, "listen")
	ln, err := net.FileListener(f) // works on a dup of fd 3
	if err != nil {
		log.Fatalf("fd 3: %v", err)
	}
	f.Close()
	return ln
}

// notify is sd_notify(): one datagram to NOTIFY_SOCKET.
func notify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		log.Printf("notify: %v", err)
		return
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		log.Printf("notify: %v", err)
	}
}

// stopIdleGrace is how long, after SIGTERM, an idle keep-alive connection may
// still send one request before it is closed.
const stopIdleGrace = 2 * time.Second

func main() {
	slot, generation := os.Getenv("SOCKHERD_SLOT"), os.Getenv("SOCKHERD_GENERATION")
	var draining atomic.Bool
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			w.Header().Set("Connection", "close") // net/http closes the connection after this answer
		}
		if r.URL.Path == "/slow" {
			time.Sleep(time.Second)
		}
		fmt.Fprintf(w, "hello from pid %d slot %s generation %s\n", os.Getpid(), slot, generation)
	})}

	ln := listener()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		<-stop
		// Not srv.Shutdown at once: it closes every idle keep-alive
		// connection right away, while its client may be sending the next
		// request on it. Stop accepting, and give those clients the grace
		// to send one more request (answered with "Connection: close").
		draining.Store(true)
		ln.Close() // Serve returns; open connections are still served
		time.Sleep(stopIdleGrace)
		// Now close what stayed idle and wait for the requests in flight;
		// sockherd's stop-timeout bounds it.
		if err := srv.Shutdown(context.Background()); err != nil {
			log.Printf("shutdown: %v", err)
		}
		close(done)
	}()

	notify("READY=1")
	if err := srv.Serve(ln); !draining.Load() {
		log.Fatalf("serve: %v", err)
	}
	<-done
	log.Printf("pid %d slot %s: stopped", os.Getpid(), slot)
}
