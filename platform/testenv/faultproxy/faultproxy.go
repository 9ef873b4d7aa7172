// Package faultproxy is a TCP proxy for tests that must see how a client
// copes with a slow or broken server: it forwards every connection to a
// target (Redis, say) and can hold the server's replies back for a while or
// cut connections, while the server itself stays healthy. Only the proxy is
// touched; the server behind it is never stopped.
package faultproxy

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moreline/moreid/platform/testenv"
)

// Proxy forwards loopback connections to a target. Its zero faults forward
// at once.
type Proxy struct {
	// Addr is where clients connect (127.0.0.1:port).
	Addr   string
	target string
	lis    net.Listener

	mu sync.Mutex
	// delayNext replies are each held back by delay before they are
	// forwarded; delayAll holds back every reply.
	delayNext int
	delay     time.Duration
	delayAll  time.Duration
	// match: the replies to the next matchLeft requests containing match
	// are held back by matchDelay.
	match      []byte
	matchLeft  int
	matchDelay time.Duration
	conns      map[net.Conn]struct{}

	replies atomic.Int64
	matched atomic.Int64
	wg      sync.WaitGroup
	closed  atomic.Bool
}

// New starts a proxy to target and stops it when the test ends.
//
// The proxy keeps its listener for its whole life: the kernel picks the
// port (":0") and nobody else can take it while we hold it, so there is
// no window between picking a free port and binding it.
func New(t testenv.TB, target string) *Proxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultproxy listen: %v", err)
	}
	p := &Proxy{Addr: lis.Addr().String(), target: target, lis: lis, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// DelayNext holds back each of the next n replies by d. A "reply" is one
// read from the server, which for a request/response protocol with small
// replies (Redis) is one reply.
func (p *Proxy) DelayNext(n int, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delayNext, p.delay = n, d
}

// DelayMatching holds back by d the reply to each of the next n requests
// whose bytes contain substr (a command name such as "evalsha", as the
// client spells it). It assumes one request in flight per connection, as
// a Redis client sends outside pipelines.
func (p *Proxy) DelayMatching(substr string, n int, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.match, p.matchLeft, p.matchDelay = []byte(substr), n, d
}

// DelayAll holds back every reply by d until it is called again with 0.
func (p *Proxy) DelayAll(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delayAll = d
}

// Matched is how many requests DelayMatching has caught, so that a test
// can tell its fault really happened.
func (p *Proxy) Matched() int64 { return p.matched.Load() }

// Replies is how many replies the proxy has forwarded (or tried to: a
// reply to a client that has gone counts too).
func (p *Proxy) Replies() int64 { return p.replies.Load() }

// DropAll cuts every open connection, as a network failure would; new
// connections are accepted as before.
func (p *Proxy) DropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// Close stops the proxy and cuts every connection through it.
func (p *Proxy) Close() {
	if p.closed.Swap(true) {
		return
	}
	_ = p.lis.Close()
	p.DropAll()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.lis.Accept()
		if err != nil {
			return // closed
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		if !p.track(client, server) {
			return
		}
		// held is the hold of this connection's next reply, in ns.
		held := new(atomic.Int64)
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			p.requestLoop(client, server, held)
			p.untrack(client, server)
		}()
		go func() {
			defer p.wg.Done()
			p.replyLoop(client, server, held)
			p.untrack(client, server)
		}()
	}
}

// track registers a connection pair, or closes it if the proxy is closing.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// replyLoop forwards the server's replies, holding each back as the faults
// say. A held reply is still written afterwards (to a client that may
// have given up and closed): the server did answer, only late.
func (p *Proxy) replyLoop(client, server net.Conn, held *atomic.Int64) {
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			p.replies.Add(1)
			d := max(p.holdFor(), time.Duration(held.Swap(0)))
			if d > 0 {
				time.Sleep(d)
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a cut connection: untrack closes both sides
		}
	}
}

// requestLoop forwards the client's requests unchanged, marking the
// connection's next reply to be held when a request matches. The mark is
// set before the request is forwarded, so its reply cannot slip past.
func (p *Proxy) requestLoop(client, server net.Conn, held *atomic.Int64) {
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if d := p.matches(buf[:n]); d > 0 {
				held.Store(int64(d))
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) matches(req []byte) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.matchLeft == 0 || !bytes.Contains(req, p.match) {
		return 0
	}
	p.matchLeft--
	p.matched.Add(1)
	return p.matchDelay
}

func (p *Proxy) holdFor() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.delayNext > 0 {
		p.delayNext--
		return p.delay
	}
	return p.delayAll
}
