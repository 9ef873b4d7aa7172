package user

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are the argon2id cost parameters.
type Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

// DefaultParams is OWASP's first argon2id recommendation (m=46 MiB, t=1, p=1).
func DefaultParams() Params { return Params{MemoryKiB: 47104, Time: 1, Threads: 1} }

func (p Params) validate() error {
	switch {
	case p.Threads < 1:
		return errors.New("argon2 threads must be at least 1")
	case p.Time < 1:
		return errors.New("argon2 time must be at least 1")
	case p.MemoryKiB < 8*uint32(p.Threads):
		return errors.New("argon2 memory must be at least 8 KiB per thread")
	case p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("argon2 memory must be at most %d KiB", maxMemoryKiB)
	case p.Time > maxTime:
		return fmt.Errorf("argon2 time must be at most %d", maxTime)
	}
	return nil
}

const (
	saltLen = 16
	keyLen  = 32

	// Upper bounds on parameters read back from a stored hash: a corrupted
	// or planted row must not make one login allocate gigabytes or spin for
	// minutes.
	maxMemoryKiB = 4 << 20 // 4 GiB
	maxTime      = 100
	minSaltLen   = 8
	minKeyLen    = 16
	maxKeyLen    = 128
)

// ErrMalformedHash means a stored password hash is not an argon2id PHC
// string this package can verify.
var ErrMalformedHash = errors.New("malformed argon2id hash")

// Hasher hashes and verifies passwords with argon2id. It lets at most a
// fixed number of computations run at once: each one allocates MemoryKiB, so
// without the bound a login storm would grow memory with the request count.
type Hasher struct {
	params Params
	sem    chan struct{}
	dummy  string // a hash of a random secret, verified for unknown users
}

// NewHasher returns a hasher that hashes with p and runs at most concurrency
// computations at once.
func NewHasher(p Params, concurrency int) (*Hasher, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if concurrency < 1 {
		return nil, errors.New("argon2 concurrency must be at least 1")
	}
	h := &Hasher{params: p, sem: make(chan struct{}, concurrency)}
	// The dummy hash uses the configured parameters, like every user's hash
	// after their next login, so that verifying it costs what a real
	// verification costs.
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("dummy secret: %w", err)
	}
	dummy, err := h.Hash(context.Background(), string(secret))
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the PHC string of password under the configured parameters
// and a fresh random salt.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, h.params.Time, h.params.MemoryKiB, h.params.Threads, keyLen)
	h.release()
	return encode(h.params, salt, key), nil
}

// Verify reports whether password matches the PHC string encoded, and
// whether encoded should be replaced by a fresh hash because it was made
// with other parameters than the configured ones. The parameters are read
// from encoded, so hashes made under older settings keep verifying.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (ok, rehash bool, err error) {
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	h.release()
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p != h.params || len(salt) != saltLen || len(want) != keyLen, nil
}

// VerifyDummy spends the time and memory of one verification and always
// fails; it stands in for the hash of a user who does not exist.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, h.dummy, password)
	return err
}

// acquire waits for a computation slot, or for ctx to end.
func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for a password hashing slot: %w", ctx.Err())
	}
}

func (h *Hasher) release() { <-h.sem }

var b64 = base64.RawStdEncoding

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses "$argon2id$v=19$m=M,t=T,p=P$<salt>$<hash>".
func decode(s string) (Params, []byte, []byte, error) {
	var p Params
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: not a $argon2id$ PHC string", ErrMalformedHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: unsupported version %q", ErrMalformedHash, parts[2])
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return p, nil, nil, fmt.Errorf("%w: want m,t,p parameters", ErrMalformedHash)
	}
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(fields[i], name+"=")
		if !ok {
			return p, nil, nil, fmt.Errorf("%w: parameter %d is not %s", ErrMalformedHash, i+1, name)
		}
		bits := 32
		if name == "p" {
			bits = 8
		}
		n, err := strconv.ParseUint(v, 10, bits)
		if err != nil {
			return p, nil, nil, fmt.Errorf("%w: parameter %s: %v", ErrMalformedHash, name, err)
		}
		switch name {
		case "m":
			p.MemoryKiB = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			p.Threads = uint8(n)
		}
	}
	if err := p.validate(); err != nil {
		return p, nil, nil, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	salt, err := b64.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < minSaltLen {
		return p, nil, nil, fmt.Errorf("%w: bad salt", ErrMalformedHash)
	}
	key, err := b64.Strict().DecodeString(parts[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return p, nil, nil, fmt.Errorf("%w: bad hash", ErrMalformedHash)
	}
	return p, salt, key, nil
}
