package redisstore

import (
	"strings"
	"testing"
)

// The front channel's consuming scripts write their once-markers beside
// the auth request and the device record: each must land in its record's
// slot, or the script fails on Redis Cluster.
func TestOIDCFrontMarkersInTheRecordsSlot(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, s := range []*Store{{prefix: "moreid:"}, {prefix: "{moreid}:"}} {
		for _, key := range []string{s.frontAuthReqKey("ar_x"), s.frontDeviceKey(h)} {
			t.Run(key, func(t *testing.T) {
				marker := sameSlot(key, ":once:attempt")
				if marker == key || hashTag(marker) != hashTag(key) {
					t.Fatalf("marker %q hashes %q, record %q hashes %q", marker, hashTag(marker), key, hashTag(key))
				}
			})
		}
	}
}
