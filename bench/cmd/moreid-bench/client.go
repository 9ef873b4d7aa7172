package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/moreline/moreid/proto/gen/go/moreid/auth/v1"
	"github.com/moreline/moreid/proto/wire"
)

// restClient calls the REST gateway (or a baseline) as a client app would:
// keep-alive connections, X-API-Key on every request, JSON bodies.
type restClient struct {
	base string
	key  string
	hc   *http.Client
}

func newREST(base, key string, maxConns int) *restClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = maxConns
	tr.MaxIdleConnsPerHost = maxConns
	return &restClient{base: base, key: key, hc: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

// call sends one request and fails unless the answer is 200; out, when not
// nil, receives the JSON body. Errors name the path, status and machine
// code only: a body may hold a secret.
func (c *restClient) call(ctx context.Context, method, path string, body []byte, bearer string, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if c.key != "" {
		req.Header.Set("X-API-Key", c.key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		return fmt.Errorf("%s %s: status %d %s", method, path, resp.StatusCode, e.Error)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: answer is not the expected JSON: %w", method, path, err)
		}
	}
	return nil
}

// mustJSON encodes a request body the tool builds itself.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// rpcClient calls the auth service directly over gRPC, as the platform's
// internal services do: one HTTP/2 connection, the key in x-api-key.
type rpcClient struct {
	conn    *grpc.ClientConn
	auth    authv1.AuthServiceClient
	confirm authv1.ConfirmationServiceClient
	tokens  authv1.TokenServiceClient
	keyMD   metadata.MD
}

func newRPC(addr, key string) (*rpcClient, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &rpcClient{
		conn:    conn,
		auth:    authv1.NewAuthServiceClient(conn),
		confirm: authv1.NewConfirmationServiceClient(conn),
		tokens:  authv1.NewTokenServiceClient(conn),
		keyMD:   metadata.Pairs(wire.APIKey, key),
	}, nil
}

// withKey is ctx carrying the API key.
func (r *rpcClient) withKey(ctx context.Context) context.Context {
	return metadata.NewOutgoingContext(ctx, r.keyMD)
}

// withBearer is ctx carrying the API key and an access token.
func (r *rpcClient) withBearer(ctx context.Context, token string) context.Context {
	return metadata.NewOutgoingContext(ctx, metadata.Join(r.keyMD, metadata.Pairs("authorization", "Bearer "+token)))
}

// queue holds prepared single-use inputs (fresh states, codes).
type queue[T any] struct {
	mu    sync.Mutex
	items []T
}

func (q *queue[T]) take() (T, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var zero T
	if len(q.items) == 0 {
		return zero, false
	}
	v := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return v, true
}

func (q *queue[T]) put(v T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items = append(q.items, v)
}

func (q *queue[T]) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// fill makes n more inputs with workers goroutines; the first failure
// stops it.
func fill[T any](ctx context.Context, q *queue[T], n, workers int, newItem func(context.Context) (T, error)) error {
	if n <= 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				v, err := newItem(ctx)
				if err != nil {
					errs <- err
					cancel()
					return
				}
				q.put(v)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
