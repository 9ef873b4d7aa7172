package signing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// DevKEK is the key-encryption key used when MOREID_KEY_ENCRYPTION_KEY is
// unset: base64 of the 32 bytes 0x00..0x1f. It is public (it is written
// here), so keys sealed under it protect nothing; it exists so that a local
// suite just works and keeps its signing keys across restarts and
// replicas, which a random per-process key would not. Deployments set
// their own (a Kubernetes Secret), and auth warns at start while the
// default is in use.
const DevKEK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// KEKs are the key-encryption keys of MOREID_KEY_ENCRYPTION_KEY: the first
// seals, any of them opens, so an operator rotates the KEK by putting the
// new one first and keeping the old one until every key is resealed or
// expired.
type KEKs struct {
	sealID string
	open   map[string]cipher.AEAD // by kek_id
}

// ParseKEKs reads a comma-separated list of base64 (standard or URL
// alphabet, padded or not) 32-byte keys. Errors name the position, never
// the value.
func ParseKEKs(list string) (*KEKs, error) {
	k := &KEKs{open: map[string]cipher.AEAD{}}
	for i, part := range strings.Split(list, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		raw, err := decodeKey(part)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("key %d: must be the base64 of 32 bytes (value not shown)", i+1)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		id := KEKID(raw)
		if k.sealID == "" {
			k.sealID = id
		}
		k.open[id] = aead
	}
	if k.sealID == "" {
		return nil, errors.New("no key given")
	}
	return k, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// KEKID names a KEK in the table: the first 8 hex characters of its
// SHA-256, enough to tell keys apart and useless for finding one.
func KEKID(kek []byte) string {
	sum := sha256.Sum256(kek)
	return hex.EncodeToString(sum[:4])
}

// SealID is the kek_id of the key that seals.
func (k *KEKs) SealID() string { return k.sealID }

// Seal encrypts plaintext with AES-256-GCM under the first KEK, bound to kid
// (the additional data), so a sealed private key copied onto another row
// does not open. It returns nonce||ciphertext and the KEK's id.
func (k *KEKs) Seal(kid string, plaintext []byte) ([]byte, string, error) {
	aead := k.open[k.sealID]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, "", err
	}
	return aead.Seal(nonce, nonce, plaintext, []byte(kid)), k.sealID, nil
}

// ErrNoKEK means a sealed key names a KEK that is not configured.
var ErrNoKEK = errors.New("sealed under a key-encryption key that is not configured")

// Open decrypts what Seal returned for kid under the KEK named kekID.
func (k *KEKs) Open(kid, kekID string, sealed []byte) ([]byte, error) {
	aead, ok := k.open[kekID]
	if !ok {
		return nil, fmt.Errorf("kek %s: %w", kekID, ErrNoKEK)
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("sealed key too short")
	}
	n := aead.NonceSize()
	out, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(kid))
	if err != nil {
		// GCM's error says nothing of the key or the plaintext.
		return nil, fmt.Errorf("kek %s: %w", kekID, err)
	}
	return out, nil
}
