package signing

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func key(fill byte) []byte { return bytes.Repeat([]byte{fill}, 32) }

func TestKEKRoundTrip(t *testing.T) {
	a, b := b64(key(1)), b64(key(2))
	secret := []byte("pkcs8 der of a private key")
	tests := []struct {
		name      string
		seal      string // list that seals
		open      string // list that opens
		sealKID   string
		openKID   string
		tamper    bool
		wantError bool
	}{
		{name: "same key", seal: a, open: a, sealKID: "k1", openKID: "k1"},
		{name: "old key second in the list", seal: a, open: b + "," + a, sealKID: "k1", openKID: "k1"},
		{name: "url alphabet unpadded", seal: a, open: base64.RawURLEncoding.EncodeToString(key(1)), sealKID: "k1", openKID: "k1"},
		{name: "wrong key", seal: a, open: b, sealKID: "k1", openKID: "k1", wantError: true},
		{name: "moved to another kid", seal: a, open: a, sealKID: "k1", openKID: "k2", wantError: true},
		{name: "tampered", seal: a, open: a, sealKID: "k1", openKID: "k1", tamper: true, wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealer, err := ParseKEKs(tt.seal)
			if err != nil {
				t.Fatal(err)
			}
			opener, err := ParseKEKs(tt.open)
			if err != nil {
				t.Fatal(err)
			}
			sealed, kekID, err := sealer.Seal(tt.sealKID, secret)
			if err != nil {
				t.Fatal(err)
			}
			if kekID != sealer.SealID() || len(kekID) != 8 {
				t.Fatalf("kek_id %q, want the sealing key's 8 hex %q", kekID, sealer.SealID())
			}
			if bytes.Contains(sealed, secret) {
				t.Fatal("the sealed key contains the plaintext")
			}
			if tt.tamper {
				sealed[len(sealed)-1] ^= 1
			}
			got, err := opener.Open(tt.openKID, kekID, sealed)
			if tt.wantError {
				if err == nil {
					t.Fatalf("opened %q, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, secret) {
				t.Fatalf("opened %q, want %q", got, secret)
			}
		})
	}
}

func TestKEKSealsWithTheFirst(t *testing.T) {
	k, err := ParseKEKs(b64(key(2)) + ", " + b64(key(1)))
	if err != nil {
		t.Fatal(err)
	}
	if k.SealID() != KEKID(key(2)) {
		t.Fatalf("seals with %s, want the first key %s", k.SealID(), KEKID(key(2)))
	}
	sealed, _, err := k.Seal("kid", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Open("kid", KEKID(key(1)), sealed); err == nil {
		t.Fatal("opened under the second key what the first sealed")
	}
}

func TestParseKEKsRefuses(t *testing.T) {
	short := b64(key(7)[:16])
	for _, list := range []string{"", " , ", "not base64!!", short, b64(key(1)) + "," + short} {
		t.Run(list, func(t *testing.T) {
			_, err := ParseKEKs(list)
			if err == nil {
				t.Fatalf("ParseKEKs(%q) accepted", list)
			}
			if strings.TrimSpace(list) != "" && strings.Contains(err.Error(), short) {
				t.Fatalf("the error quotes the key: %v", err)
			}
		})
	}
}

// The documented development KEK is what its comment says, so an operator
// reading the source can tell it apart.
func TestDevKEK(t *testing.T) {
	raw, err := base64.StdEncoding.DecodeString(DevKEK)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 32)
	for i := range want {
		want[i] = byte(i)
	}
	if !bytes.Equal(raw, want) {
		t.Fatalf("DevKEK is %x, want 00..1f", raw)
	}
	if _, err := ParseKEKs(DevKEK); err != nil {
		t.Fatal(err)
	}
}
