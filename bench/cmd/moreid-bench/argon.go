package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// argonParams are the argon2id parameters the user service hashes with,
// read from the same variables and with the same defaults (it inherits this
// process's environment when the tool starts the suite).
type argonParams struct {
	memoryKiB, time uint32
	threads         uint8
}

func argonFromEnv() (argonParams, error) {
	p := argonParams{memoryKiB: 47104, time: 1, threads: 1}
	for _, v := range []struct {
		name string
		set  func(uint64)
		bits int
	}{
		{"MOREID_ARGON2_MEMORY_KIB", func(n uint64) { p.memoryKiB = uint32(n) }, 32},
		{"MOREID_ARGON2_TIME", func(n uint64) { p.time = uint32(n) }, 32},
		{"MOREID_ARGON2_THREADS", func(n uint64) { p.threads = uint8(n) }, 8},
	} {
		if s := os.Getenv(v.name); s != "" {
			n, err := strconv.ParseUint(s, 10, v.bits)
			if err != nil || n == 0 {
				return p, fmt.Errorf("%s=%q: want a positive integer", v.name, s)
			}
			v.set(n)
		}
	}
	return p, nil
}

func (p argonParams) String() string {
	return fmt.Sprintf("m=%d KiB, t=%d, p=%d", p.memoryKiB, p.time, p.threads)
}

// secondsPerHash hashes on one goroutine for at least minTime (and at
// least five hashes) and returns the mean time of one.
func secondsPerHash(p argonParams, minTime time.Duration) time.Duration {
	pw, salt := make([]byte, 16), make([]byte, 16)
	_, _ = rand.Read(pw)
	_, _ = rand.Read(salt)
	argon2.IDKey(pw, salt, p.time, p.memoryKiB, p.threads, 32) // page the memory in once
	start := time.Now()
	n := 0
	for n < 5 || time.Since(start) < minTime {
		argon2.IDKey(pw, salt, p.time, p.memoryKiB, p.threads, 32)
		n++
	}
	return time.Since(start) / time.Duration(n)
}

// parallelHashRate runs n goroutines hashing at once for at least minTime
// and returns the hashes per second they sustained together. Where the
// hashes contend for memory bandwidth and cache (each touches all of its
// m KiB), this is below n ÷ secondsPerHash: it is the most logins the
// machine could answer with every core hashing and nothing else running.
func parallelHashRate(p argonParams, n int, minTime time.Duration) float64 {
	var wg sync.WaitGroup
	var total atomic.Int64
	start := time.Now()
	for range n {
		wg.Go(func() {
			pw, salt := make([]byte, 16), make([]byte, 16)
			_, _ = rand.Read(pw)
			_, _ = rand.Read(salt)
			for time.Since(start) < minTime {
				argon2.IDKey(pw, salt, p.time, p.memoryKiB, p.threads, 32)
				total.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds()
}
