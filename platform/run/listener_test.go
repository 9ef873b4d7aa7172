package run

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestStopAcceptingResetsNobody: 80 clients connect in a loop, all released
// together (about 15,000 connections a second here), while the listener
// stops accepting. Every connection that connected must be served (its byte
// echoed); the others must be refused. Closing a listening socket outright
// resets the connections queued in the kernel: 38 to 78 per stop here.
//
// What remains is the kernel's own window (see listener): a handshake
// whose last ACK arrives in the microsecond between the empty queue and
// the shutdown. Measured: one such reset in about 60 stops at this rate,
// so the bound is 2, not 0; at the gateway's connection rate the e2e
// TestGracefulShutdown loses none.
func TestStopAcceptingResetsNobody(t *testing.T) {
	lis, err := listen("127.0.0.1:0") // kept open: nobody else can take the port
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				if _, err := io.ReadFull(c, b); err == nil {
					_, _ = c.Write(b)
				}
			}()
		}
	}()
	addr := lis.Addr().String()
	const clients = 80
	var served, refused, unconnected, lost atomic.Int64
	var firstLoss atomic.Value
	stop := make(chan struct{})
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			<-release
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					// Refused, or reset while connecting: never accepted.
					if errors.Is(err, syscall.ECONNREFUSED) {
						refused.Add(1)
					} else {
						unconnected.Add(1)
					}
					continue
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				b := []byte{'x'}
				_, err = c.Write(b)
				if err == nil {
					_, err = io.ReadFull(c, b)
				}
				c.Close()
				if err != nil {
					lost.Add(1)
					firstLoss.CompareAndSwap(nil, err.Error())
					continue
				}
				served.Add(1)
			}
		})
	}
	close(release)
	// The listener stops under full load: once every client has been
	// served a few times, not after a fixed pause a loaded machine might
	// spend before the first connection.
	for deadline := time.Now().Add(30 * time.Second); served.Load() < 10*clients; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d connections served in 30 s", served.Load())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := lis.stopAccepting(ctx); err != nil {
		t.Fatalf("stopAccepting: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for refused.Load() < clients && time.Now().Before(deadline) { // every client has met the closed port
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	lis.Close()
	t.Logf("%d connections served, %d refused after the listener closed, %d reset while connecting, %d lost",
		served.Load(), refused.Load(), unconnected.Load(), lost.Load())
	if lost.Load() > 2 {
		t.Fatalf("%d connections reset or cut off (first: %v)", lost.Load(), firstLoss.Load())
	}
}
