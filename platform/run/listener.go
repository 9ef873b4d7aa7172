package run

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// listener is a TCP listener that stops accepting without resetting
// anyone it can help. Closing a listening socket resets every connection
// the kernel completed that the server had not accepted yet (its accept
// queue): those clients saw their connect succeed, sent a request and get a
// reset. Under load on a busy machine the server's accept loop runs behind
// and that queue is rarely empty. So stopAccepting waits until the accept
// loop has taken every queued connection and, in the same system call
// sequence, shuts the socket down (Linux: the queue length from TCP_INFO,
// then shutdown(2), a microsecond apart): from then on the kernel refuses
// new connections, which tells those clients the truth, that nothing was
// accepted.
//
// Linux offers no way to refuse new connections while keeping the queue
// (a socket filter dropping SYNs would, where the kernel allows socket
// filters), so a connection whose handshake completes in that microsecond
// is still reset; the pause before (Shutdown.Delay) is what keeps clients
// from arriving at all.
//
// After stopAccepting, Accept blocks until Close, so that the server loop
// does not mistake the shut-down socket for a failure.
type listener struct {
	net.Listener
	stopped   chan struct{} // closed when stopAccepting closed the socket
	closed    chan struct{} // closed by Close
	closeOnce sync.Once
	stopOnce  sync.Once
}

func listen(addr string) (*listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &listener{Listener: lis, stopped: make(chan struct{}), closed: make(chan struct{})}, nil
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		select {
		case <-l.stopped:
			<-l.closed
			return nil, net.ErrClosed
		default:
		}
	}
	return c, err
}

// Close closes the socket (if stopAccepting has not) and ends Accept.
func (l *listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closed)
		err = l.Listener.Close()
	})
	return err
}

// stopAccepting refuses new connections and returns once every connection
// the kernel had completed has been accepted (the server serves them), or
// when ctx ends. Without kernel support (not Linux) it just closes the
// socket.
func (l *listener) stopAccepting(ctx context.Context) error {
	var err error
	l.stopOnce.Do(func() {
		err = l.shutDownEmpty(ctx)
		close(l.stopped)
		if cerr := l.Listener.Close(); cerr != nil && err == nil {
			select {
			case <-l.closed: // closed already
			default:
				err = cerr
			}
		}
	})
	return err
}

// shutDownEmpty shuts the socket down as soon as its accept queue is empty.
func (l *listener) shutDownEmpty(ctx context.Context) error {
	tcp, ok := l.Listener.(*net.TCPListener)
	if !ok {
		return nil
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return fmt.Errorf("stop accepting: %w", err)
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		done, err := shutdownIfQueueEmpty(raw)
		if err != nil {
			return fmt.Errorf("stop accepting: %w", err)
		}
		if done {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
