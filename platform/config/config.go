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
// A process uses one Reader for every component it runs and calls Err
// once, after reading all of them: start-up then names every bad setting.
type Reader struct {
	lookup func(string) (string, bool)
	errs   []error
	// failed names the variables with an error already: components of one
	// process read some of the same ones (MOREID_DRAIN_TIMEOUT), and one
	// bad value is one error, not one per reader of it.
	failed map[string]bool
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

// Fail records that the variable name, set to value, is wrong: for checks
// that are not one typed read (a bound across two variables, a file that
// does not load). Pass "" for the value of a secret: the error then names
// the variable only. A variable's first error is kept, later ones dropped.
func (r *Reader) Fail(name, value string, err error) {
	if r.failed[name] {
		return
	}
	if r.failed == nil {
		r.failed = map[string]bool{}
	}
	r.failed[name] = true
	if value == "" {
		r.errs = append(r.errs, fmt.Errorf("%s: %w", name, err))
		return
	}
	r.errs = append(r.errs, fmt.Errorf("%s=%q: %w", name, value, err))
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
	r.Fail(name, v, fmt.Errorf("want 1 or 0"))
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
		r.Fail(name, v, err)
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
		r.Fail(name, v, err)
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
		r.Fail(name, v, err)
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
