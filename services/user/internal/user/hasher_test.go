package user

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// cheap keeps unit tests fast; one test below uses the real defaults.
var cheap = Params{MemoryKiB: 64, Time: 1, Threads: 1}

func newHasher(t *testing.T, p Params, concurrency int) *Hasher {
	t.Helper()
	h, err := NewHasher(p, concurrency)
	if err != nil {
		t.Fatalf("NewHasher(%+v): %v", p, err)
	}
	return h
}

var phc = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$`)

func TestHashRoundTrip(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, cheap, 2)
	for _, pw := range []string{"password1", "密码是一二三四五六", strings.Repeat("x", 1024)} {
		enc, err := h.Hash(ctx, pw)
		if err != nil {
			t.Fatalf("Hash: %v", err)
		}
		m := phc.FindStringSubmatch(enc)
		if m == nil {
			t.Fatalf("hash %q is not a PHC argon2id string with a 16-byte salt and 32-byte key", enc)
		}
		if m[1] != "64" || m[2] != "1" || m[3] != "1" {
			t.Errorf("hash %q: params m=%s,t=%s,p=%s, want 64,1,1", enc, m[1], m[2], m[3])
		}
		if strings.Contains(enc, pw) {
			t.Errorf("hash contains the password")
		}
		ok, rehash, err := h.Verify(ctx, enc, pw)
		if err != nil || !ok || rehash {
			t.Errorf("Verify(right password) = %v, %v, %v; want true, false, nil", ok, rehash, err)
		}
		ok, _, err = h.Verify(ctx, enc, pw+"x")
		if err != nil || ok {
			t.Errorf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
		}
	}
}

func TestHashUsesFreshSalt(t *testing.T) {
	h := newHasher(t, cheap, 1)
	a, _ := h.Hash(context.Background(), "same password")
	b, _ := h.Hash(context.Background(), "same password")
	if a == b {
		t.Fatalf("two hashes of one password are equal: %q", a)
	}
}

func TestDefaultParams(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, DefaultParams(), 1)
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=47104,t=1,p=1$") {
		t.Fatalf("hash %q does not carry the default parameters", enc)
	}
	if ok, rehash, err := h.Verify(ctx, enc, "correct horse battery staple"); !ok || rehash || err != nil {
		t.Fatalf("Verify = %v, %v, %v", ok, rehash, err)
	}
}

func TestVerifyReadsParamsFromHash(t *testing.T) {
	ctx := context.Background()
	old := newHasher(t, Params{MemoryKiB: 32, Time: 2, Threads: 2}, 1)
	enc, err := old.Hash(ctx, "password1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(enc, "$m=32,t=2,p=2$") {
		t.Fatalf("hash %q does not record m=32,t=2,p=2", enc)
	}
	current := newHasher(t, cheap, 1)
	ok, rehash, err := current.Verify(ctx, enc, "password1")
	if err != nil || !ok {
		t.Fatalf("a hash made under other params must still verify: %v, %v", ok, err)
	}
	if !rehash {
		t.Errorf("a hash made under other params must ask for a rehash")
	}
	if ok, rehash, _ := current.Verify(ctx, enc, "password2"); ok || rehash {
		t.Errorf("wrong password: ok=%v rehash=%v, want false false (never rehash on failure)", ok, rehash)
	}
}

func TestRehashDetection(t *testing.T) {
	ctx := context.Background()
	current := newHasher(t, cheap, 1)
	tests := []struct {
		name   string
		made   Params
		rehash bool
	}{
		{"same params", cheap, false},
		{"more memory", Params{MemoryKiB: 128, Time: 1, Threads: 1}, true},
		{"more time", Params{MemoryKiB: 64, Time: 2, Threads: 1}, true},
		{"more threads", Params{MemoryKiB: 64, Time: 1, Threads: 2}, true},
		{"less memory", Params{MemoryKiB: 32, Time: 1, Threads: 1}, true},
	}
	t.Run("same params, 16-byte key", func(t *testing.T) {
		salt := []byte("0123456789abcdef")
		enc := encode(cheap, salt, argon2.IDKey([]byte("password1"), salt, cheap.Time, cheap.MemoryKiB, cheap.Threads, 16))
		ok, rehash, err := current.Verify(ctx, enc, "password1")
		if err != nil || !ok || !rehash {
			t.Fatalf("Verify = %v, rehash %v, %v; want true, rehash true", ok, rehash, err)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := newHasher(t, tc.made, 1).Hash(ctx, "password1")
			if err != nil {
				t.Fatal(err)
			}
			ok, rehash, err := current.Verify(ctx, enc, "password1")
			if err != nil || !ok || rehash != tc.rehash {
				t.Fatalf("Verify = %v, rehash %v, %v; want true, rehash %v", ok, rehash, err, tc.rehash)
			}
		})
	}
}

func TestMalformedHash(t *testing.T) {
	ctx := context.Background()
	h := newHasher(t, cheap, 1)
	good, err := h.Hash(ctx, "password1")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=..., salt, hash
	join := func(p ...string) string { return strings.Join(p, "$") }
	tests := map[string]string{
		"empty":              "",
		"bcrypt":             "$2a$10$abcdefghijklmnopqrstuuJ3bV6Y1oHq2T5vQ8J9gJ8Xz5x0n1e2",
		"argon2i":            join("", "argon2i", parts[2], parts[3], parts[4], parts[5]),
		"version 16":         join("", "argon2id", "v=16", parts[3], parts[4], parts[5]),
		"missing part":       join("", "argon2id", parts[2], parts[3], parts[4]),
		"extra part":         good + "$x",
		"params order":       join("", "argon2id", parts[2], "t=1,m=64,p=1", parts[4], parts[5]),
		"param not a number": join("", "argon2id", parts[2], "m=abc,t=1,p=1", parts[4], parts[5]),
		"two params":         join("", "argon2id", parts[2], "m=64,t=1", parts[4], parts[5]),
		"threads zero":       join("", "argon2id", parts[2], "m=64,t=0,p=1", parts[4], parts[5]),
		"threads overflow":   join("", "argon2id", parts[2], "m=64,t=1,p=256", parts[4], parts[5]),
		"memory too small":   join("", "argon2id", parts[2], "m=4,t=1,p=1", parts[4], parts[5]),
		"memory huge":        join("", "argon2id", parts[2], "m=4294967295,t=1,p=1", parts[4], parts[5]),
		"time huge":          join("", "argon2id", parts[2], "m=64,t=100000,p=1", parts[4], parts[5]),
		"padded salt":        join("", "argon2id", parts[2], parts[3], parts[4]+"==", parts[5]),
		"salt not base64":    join("", "argon2id", parts[2], parts[3], "!!!!!!!!!!!!!!!!!!!!!!", parts[5]),
		"short salt":         join("", "argon2id", parts[2], parts[3], "AAAA", parts[5]),
		"short hash":         join("", "argon2id", parts[2], parts[3], parts[4], "AAAAAAAA"),
		"empty hash":         join("", "argon2id", parts[2], parts[3], parts[4], ""),
	}
	for name, enc := range tests {
		t.Run(name, func(t *testing.T) {
			ok, rehash, err := h.Verify(ctx, enc, "password1")
			if !errors.Is(err, ErrMalformedHash) || ok || rehash {
				t.Fatalf("Verify(%q) = %v, %v, %v; want ErrMalformedHash", enc, ok, rehash, err)
			}
		})
	}
}

func TestNewHasherRejectsBadSettings(t *testing.T) {
	tests := map[string]struct {
		p Params
		n int
	}{
		"zero threads":      {Params{MemoryKiB: 64, Time: 1, Threads: 0}, 1},
		"zero time":         {Params{MemoryKiB: 64, Time: 0, Threads: 1}, 1},
		"memory < 8/thread": {Params{MemoryKiB: 15, Time: 1, Threads: 2}, 1},
		"zero concurrency":  {cheap, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := NewHasher(tc.p, tc.n); err == nil {
				t.Fatalf("NewHasher(%+v, %d) accepted", tc.p, tc.n)
			}
		})
	}
}

// With every slot taken, hashing waits, and gives up when its context ends
// instead of piling up argon2 buffers.
func TestHasherHonoursContextWhileWaiting(t *testing.T) {
	h := newHasher(t, cheap, 2)
	enc, _ := h.Hash(context.Background(), "password1")
	release := HoldHashSlots(h)
	t.Cleanup(release)

	ops := map[string]func(ctx context.Context) error{
		"hash":   func(ctx context.Context) error { _, err := h.Hash(ctx, "password1"); return err },
		"verify": func(ctx context.Context) error { _, _, err := h.Verify(ctx, enc, "password1"); return err },
		"dummy":  func(ctx context.Context) error { return h.VerifyDummy(ctx, "password1") },
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if err := op(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want context.DeadlineExceeded", err)
			}
		})
	}

	release()
	if _, err := h.Hash(context.Background(), "password1"); err != nil {
		t.Fatalf("after the slots are released: %v", err)
	}
}
