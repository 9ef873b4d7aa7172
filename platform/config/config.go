// Package config reads MOREID_* environment variables. Each binary declares
// one struct and fills it with a Reader, which collects every bad value so
// that start-up fails once with a message naming all of them.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/moreline/moreid/platform/ipset"
)

// Reader reads typed settings from the environment, remembering errors.
type Reader struct {
	lookup func(string) (string, bool)
	errs   []error
}

// FromEnv reads the process environment.
func FromEnv() *Reader { return &Reader{lookup: os.LookupEnv} }

// FromMap reads a fixed map, for tests.
func FromMap(m map[string]string) *Reader {
	return &Reader{lookup: func(k string) (string, bool) { v, ok := m[k]; return v, ok }}
}

func (r *Reader) raw(name string) (string, bool) {
	v, ok := r.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return "", false
	}
	return strings.TrimSpace(v), true
}

func (r *Reader) fail(name, v string, err error) {
	r.errs = append(r.errs, fmt.Errorf("%s=%q: %w", name, v, err))
}

// String returns the variable or def when unset or empty.
func (r *Reader) String(name, def string) string {
	if v, ok := r.raw(name); ok {
		return v
	}
	return def
}

// Flag returns the variable as a switch: "1" or "true" is on, unset, "0"
// or "false" off, anything else an error (a typo must not leave a switch
// silently off, or on).
func (r *Reader) Flag(name string) bool {
	v, ok := r.raw(name)
	if !ok {
		return false
	}
	switch strings.ToLower(v) {
	case "1", "true":
		return true
	case "0", "false":
		return false
	}
	r.fail(name, v, fmt.Errorf("want 1 or 0"))
	return false
}

// Int returns the variable as an integer >= min, or def.
func (r *Reader) Int(name string, def, min int) int {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err == nil && n < min {
		err = fmt.Errorf("must be at least %d", min)
	}
	if err != nil {
		r.fail(name, v, err)
		return def
	}
	return n
}

// Duration returns the variable as a positive Go duration ("90s", "24h") or
// a whole number of seconds, or def.
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	if n, err := strconv.Atoi(v); err == nil {
		v = strconv.Itoa(n) + "s"
	}
	d, err := time.ParseDuration(v)
	if err == nil && d <= 0 {
		err = errors.New("must be positive")
	}
	if err != nil {
		r.fail(name, v, err)
		return def
	}
	return d
}

// Prefixes returns a comma-separated list of CIDRs or bare IPs, or def.
func (r *Reader) Prefixes(name string, def []netip.Prefix) []netip.Prefix {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	out, err := ipset.ParseList(v)
	if err != nil {
		r.fail(name, v, err)
		return def
	}
	return out
}

// Err is every error met so far, joined, or nil.
func (r *Reader) Err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return fmt.Errorf("configuration: %w", errors.Join(r.errs...))
}
