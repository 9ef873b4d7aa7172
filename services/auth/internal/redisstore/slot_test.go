package redisstore

import (
	"strings"
	"testing"
)

// hashTag is the part of a key Redis Cluster hashes (its specification:
// the bytes between the first "{" and the next "}", when not empty).
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// Every marker a consuming script writes must be in its record's slot, or
// the script fails on Redis Cluster.
func TestMarkerInTheRecordsSlot(t *testing.T) {
	s := &Store{prefix: "moreid:"}
	braced := &Store{prefix: "{moreid}:"}
	h := strings.Repeat("ab", 32)
	for _, key := range []string{
		s.stateKey(h), s.codeKey(h), s.ucaKey(h), s.tokenKey(h),
		braced.stateKey(h), braced.ucaKey(h), braced.tokenKey(h),
	} {
		t.Run(key, func(t *testing.T) {
			marker := sameSlot(key, ":once:attempt")
			if marker == key || hashTag(marker) != hashTag(key) {
				t.Fatalf("marker %q hashes %q, record %q hashes %q", marker, hashTag(marker), key, hashTag(key))
			}
		})
	}
}
