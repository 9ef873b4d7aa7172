package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// profiler fetches CPU profiles of the suite's processes while a scenario
// runs, from /debug/pprof/ on their metrics listeners (MOREID_PPROF=1).
type profiler struct {
	dir     string
	targets map[string]string // component -> pprof address
	mu      sync.Mutex
	off     bool
}

// capture profiles every target for d in the background; wait for the
// returned function before starting the next scenario.
func (p *profiler) capture(ctx context.Context, scenario string, d time.Duration) (wait func()) {
	if p == nil || p.dir == "" || len(p.targets) == 0 {
		return func() {}
	}
	var wg sync.WaitGroup
	for comp, addr := range p.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.fetch(ctx, addr, filepath.Join(p.dir, scenario+"-"+comp+".pprof"), d); err != nil {
				p.mu.Lock()
				defer p.mu.Unlock()
				if !p.off {
					fmt.Fprintf(os.Stderr, "moreid-bench: no CPU profile (%v); profiling stays off\n", err)
					p.off = true
				}
			}
		}()
	}
	return wg.Wait
}

func (p *profiler) fetch(ctx context.Context, addr, path string, d time.Duration) error {
	p.mu.Lock()
	off := p.off
	p.mu.Unlock()
	if off {
		return nil
	}
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, max(1, int(d.Seconds())))
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}
