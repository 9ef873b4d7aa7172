package apikey_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/moreline/moreid/platform/apierr"
	"github.com/moreline/moreid/platform/ipset"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/pgdb/pgdbtest"
	"github.com/moreline/moreid/platform/secret"
	"github.com/moreline/moreid/platform/testenv"
	"github.com/moreline/moreid/services/apikey/internal/apikey"
	"github.com/moreline/moreid/services/apikey/internal/pgstore"
)

var keyFormat = regexp.MustCompile(`^ml_[0-9a-f]{64}$`)

// newService returns a Service over a fresh, migrated test database.
func newService(t *testing.T) (*apikey.Service, *gorm.DB) {
	t.Helper()
	db := pgdbtest.Open(t, testenv.Postgres(t), 4, pgstore.Migrate)
	return apikey.New(pgstore.New(db, pgdb.DefaultTimeout)), db
}

func create(t *testing.T, svc *apikey.Service, req apikey.CreateRequest) (apikey.Key, string) {
	t.Helper()
	if req.Name == "" {
		req.Name = "app"
	}
	k, key, err := svc.Create(context.Background(), req)
	if err != nil {
		t.Fatalf("Create(%+v): %v", req, err)
	}
	return k, key
}

func wantKind(t *testing.T, err error, kind apierr.Kind) {
	t.Helper()
	if !apierr.Is(err, kind) {
		t.Fatalf("error = %v, want kind %s", err, kind)
	}
}

func countRows(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	var n int64
	if err := db.Raw("SELECT count(*) FROM api_keys").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCreateStoresOnlyTheHash(t *testing.T) {
	svc, db := newService(t)
	k, key := create(t, svc, apikey.CreateRequest{Name: "  我的应用  ", Whitelist: []string{"203.0.113.7", "10.0.0.0/8"}})

	if !keyFormat.MatchString(key) {
		t.Fatalf("key %q does not match %s", key, keyFormat)
	}
	if k.Prefix != key[:11] || !strings.HasPrefix(k.Prefix, "ml_") || len(k.Prefix) != 11 {
		t.Errorf("prefix = %q, want ml_ and the key's first 8 hex characters (%q)", k.Prefix, key[:11])
	}
	if k.Name != "我的应用" {
		t.Errorf("name = %q, want surrounding blanks trimmed", k.Name)
	}
	if k.ID <= 0 || k.CreatedAt.IsZero() || k.Revoked() {
		t.Errorf("record = %+v, want an id, a creation time and not revoked", k)
	}

	// Every column of the row, as Postgres renders it: the key must not be
	// there in any form, only its SHA-256.
	var rowText, hash string
	if err := db.Raw("SELECT t::text, key_hash FROM api_keys t WHERE id = ?", k.ID).Row().Scan(&rowText, &hash); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rowText, key) || strings.Contains(rowText, key[3:]) {
		t.Fatalf("row %s contains the key", rowText)
	}
	if hash != secret.Hash(key) {
		t.Fatalf("key_hash = %q, want SHA-256 hex of the key", hash)
	}

	_, key2 := create(t, svc, apikey.CreateRequest{Name: "other"})
	if key2 == key {
		t.Fatal("two keys are equal")
	}
}

func TestCreatePasswordLogin(t *testing.T) {
	svc, _ := newService(t)
	for _, tc := range []struct {
		name    string
		disable bool
		want    bool
	}{
		{"default allows password login", false, true},
		{"disable flag turns it off", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, key := create(t, svc, apikey.CreateRequest{DisablePasswordLogin: tc.disable})
			if k.PasswordLogin != tc.want {
				t.Errorf("created PasswordLogin = %v, want %v", k.PasswordLogin, tc.want)
			}
			got, err := svc.Validate(context.Background(), key, "192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			if got.PasswordLogin != tc.want {
				t.Errorf("validated PasswordLogin = %v, want %v", got.PasswordLogin, tc.want)
			}
		})
	}
}

func TestCreateRejectsBadInput(t *testing.T) {
	svc, db := newService(t)
	for _, tc := range []struct {
		name      string
		req       apikey.CreateRequest
		inMessage string
	}{
		{"empty name", apikey.CreateRequest{Name: ""}, "名称"},
		{"blank name", apikey.CreateRequest{Name: " \t "}, "名称"},
		{"name of 101 runes", apikey.CreateRequest{Name: strings.Repeat("名", 101)}, "100"},
		{"name with newline", apikey.CreateRequest{Name: "a\nb"}, "控制字符"},
		{"name with NUL", apikey.CreateRequest{Name: "a\x00b"}, "控制字符"},
		{"name not UTF-8", apikey.CreateRequest{Name: "a\xffb"}, "UTF-8"},
		{"whitelist word", apikey.CreateRequest{Name: "a", Whitelist: []string{"10.0.0.1", "localhost"}}, "localhost"},
		{"whitelist bad octet", apikey.CreateRequest{Name: "a", Whitelist: []string{"10.0.0.256"}}, "10.0.0.256"},
		{"whitelist bad mask", apikey.CreateRequest{Name: "a", Whitelist: []string{"10.0.0.0/33"}}, "10.0.0.0/33"},
		{"whitelist bad IPv6", apikey.CreateRequest{Name: "a", Whitelist: []string{"2001:db8:::1"}}, "2001:db8:::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, key, err := svc.Create(context.Background(), tc.req)
			wantKind(t, err, apierr.InvalidRequest)
			if key != "" {
				t.Errorf("a key was returned with the error")
			}
			if msg := err.(*apierr.Error).Message; !strings.Contains(msg, tc.inMessage) {
				t.Errorf("message %q does not mention %q", msg, tc.inMessage)
			}
		})
	}
	if n := countRows(t, db); n != 0 {
		t.Fatalf("%d rows stored by rejected requests", n)
	}

	t.Run("name of 100 runes is accepted", func(t *testing.T) {
		k, _ := create(t, svc, apikey.CreateRequest{Name: strings.Repeat("名", 100)})
		if k.Name != strings.Repeat("名", 100) {
			t.Errorf("name = %q", k.Name)
		}
	})
}

func TestListOldestFirst(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	if keys, err := svc.List(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("List on empty table = %v, %v", keys, err)
	}
	var want []string
	for _, name := range []string{"first", "second", "third"} {
		create(t, svc, apikey.CreateRequest{Name: name})
		want = append(want, name)
	}
	second, err := svc.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Revoke(ctx, second[1].ID); err != nil {
		t.Fatal(err)
	}

	keys, err := svc.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List names = %v, want %v (revoked keys included, oldest first)", got, want)
	}
	if !keys[1].Revoked() || keys[0].Revoked() || keys[2].Revoked() {
		t.Fatalf("revoked flags wrong: %+v", keys)
	}
}

func TestRevoke(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	k, key := create(t, svc, apikey.CreateRequest{})
	other, otherKey := create(t, svc, apikey.CreateRequest{Name: "other"})

	if _, err := svc.Validate(ctx, key, "192.0.2.1"); err != nil {
		t.Fatalf("Validate before revoke: %v", err)
	}
	first, err := svc.Revoke(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if first.RevokedAt == nil {
		t.Fatal("Revoke returned a record without revoked_at")
	}
	_, err = svc.Validate(ctx, key, "192.0.2.1")
	wantKind(t, err, apierr.InvalidAPIKey)

	again, err := svc.Revoke(ctx, k.ID)
	if err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	if !again.RevokedAt.Equal(*first.RevokedAt) {
		t.Fatalf("second Revoke moved revoked_at from %v to %v", first.RevokedAt, again.RevokedAt)
	}
	if got, err := svc.Validate(ctx, otherKey, "192.0.2.1"); err != nil || got.ID != other.ID {
		t.Fatalf("other key after revoking the first: %+v, %v", got, err)
	}

	for _, id := range []int64{other.ID + 1000, 0, -1} {
		_, err := svc.Revoke(ctx, id)
		wantKind(t, err, apierr.NotFound)
	}
}

func TestValidateRejectsKeys(t *testing.T) {
	svc, _ := newService(t)
	_, key := create(t, svc, apikey.CreateRequest{})
	for _, tc := range []struct{ name, key string }{
		{"empty", ""},
		{"unknown well-formed", secret.New("ml_", 64, secret.Hex)},
		{"uppercase hex", strings.ToUpper(key[:3]) + strings.ToUpper(key[3:])},
		{"upper hex body", "ml_" + strings.ToUpper(key[3:])},
		{"too short", key[:len(key)-1]},
		{"too long", key + "0"},
		{"no prefix", key[3:]},
		{"other prefix", "mk_" + key[3:]},
		{"non-hex", key[:len(key)-1] + "g"},
		{"surrounding blank", " " + key},
		{"prefix only", "ml_"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.Validate(context.Background(), tc.key, "192.0.2.1")
			wantKind(t, err, apierr.InvalidAPIKey)
		})
	}
}

// panicStore fails the test on any use: malformed keys must be refused
// before the store is asked.
type panicStore struct{ apikey.Store }

func TestValidateMalformedKeyNeverQueries(t *testing.T) {
	svc := apikey.New(panicStore{})
	for _, key := range []string{"", "ml_", "ml_XYZ", "token_abc", strings.Repeat("a", 67)} {
		t.Run(key, func(t *testing.T) {
			_, err := svc.Validate(context.Background(), key, "192.0.2.1")
			wantKind(t, err, apierr.InvalidAPIKey)
		})
	}
}

func TestValidateWhitelist(t *testing.T) {
	svc, _ := newService(t)
	for _, tc := range []struct {
		name      string
		whitelist []string
		clientIP  string
		allowed   bool
	}{
		{"IPv4 single, same IP", []string{"203.0.113.7"}, "203.0.113.7", true},
		{"IPv4 single, other IP", []string{"203.0.113.7"}, "203.0.113.8", false},
		{"IPv4 CIDR, inside", []string{"10.1.0.0/16"}, "10.1.255.3", true},
		{"IPv4 CIDR, outside", []string{"10.1.0.0/16"}, "10.2.0.1", false},
		{"IPv4 CIDR given unmasked", []string{"10.1.2.3/16"}, "10.1.200.1", true},
		{"IPv6 single, same IP", []string{"2001:db8::1"}, "2001:db8::1", true},
		{"IPv6 single, long form", []string{"2001:db8::1"}, "2001:DB8:0:0:0:0:0:1", true},
		{"IPv6 single, other IP", []string{"2001:db8::1"}, "2001:db8::2", false},
		{"IPv6 CIDR, inside", []string{"2001:db8:abcd::/48"}, "2001:db8:abcd:12::5", true},
		{"IPv6 CIDR, outside", []string{"2001:db8:abcd::/48"}, "2001:db8:abce::1", false},
		{"IPv4-mapped IPv6 client", []string{"203.0.113.0/24"}, "::ffff:203.0.113.9", true},
		{"IPv4-mapped IPv6 entry", []string{"::ffff:203.0.113.7"}, "203.0.113.7", true},
		{"IPv4 client, IPv6-only list", []string{"::/0"}, "192.0.2.1", false},
		{"client with port", []string{"203.0.113.7"}, "203.0.113.7:5555", true},
		{"IPv6 client with port", []string{"2001:db8::1"}, "[2001:db8::1]:443", true},
		{"one of several entries", []string{"192.0.2.1", "2001:db8::/32", "10.0.0.0/8"}, "10.9.9.9", true},
		{"client outside several entries", []string{"192.0.2.1", "2001:db8::/32", "10.0.0.0/8"}, "172.16.0.1", false},
		{"empty whitelist, IPv4", nil, "198.51.100.1", true},
		{"empty whitelist, IPv6", nil, "2001:db8::99", true},
		{"empty whitelist, garbage IP", nil, "not-an-ip", true},
		{"empty whitelist, no IP", nil, "", true},
		{"garbage client IP", []string{"0.0.0.0/0"}, "not-an-ip", false},
		{"empty client IP", []string{"0.0.0.0/0"}, "", false},
		{"hostname client", []string{"127.0.0.1"}, "localhost", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			created, key := create(t, svc, apikey.CreateRequest{Whitelist: tc.whitelist})
			got, err := svc.Validate(context.Background(), key, tc.clientIP)
			if !tc.allowed {
				wantKind(t, err, apierr.IPNotAllowed)
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got.ID != created.ID || got.Name != created.Name || got.Prefix != created.Prefix ||
				!slices.Equal(ipset.Strings(got.Whitelist), ipset.Strings(created.Whitelist)) ||
				!got.CreatedAt.Equal(created.CreatedAt) {
				t.Fatalf("Validate = %+v, want the created record %+v", got, created)
			}
		})
	}
}

func TestSetWhitelist(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	k, key := create(t, svc, apikey.CreateRequest{Whitelist: []string{"192.0.2.1"}})

	whitelistOf := func(t *testing.T) []string {
		t.Helper()
		keys, err := svc.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ipset.Strings(keys[0].Whitelist)
	}

	for _, tc := range []struct {
		name  string
		set   []string
		want  []string
		allow string // an IP now allowed
		deny  string // an IP now refused ("" when every IP is allowed)
	}{
		{"replace, canonical and deduplicated", []string{" 10.1.2.3/8 ", "::FFFF:198.51.100.4", "10.0.0.0/8", "2001:DB8::/32"},
			[]string{"10.0.0.0/8", "198.51.100.4", "2001:db8::/32"}, "10.200.0.1", "192.0.2.1"},
		{"clear with nil", nil, []string{}, "203.0.113.99", ""},
		{"set again", []string{"192.0.2.1"}, []string{"192.0.2.1"}, "192.0.2.1", "192.0.2.2"},
		{"clear with one blank entry", []string{""}, []string{}, "192.0.2.2", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := svc.SetWhitelist(ctx, k.ID, tc.set)
			if err != nil {
				t.Fatal(err)
			}
			if s := ipset.Strings(got.Whitelist); !slices.Equal(s, tc.want) {
				t.Fatalf("returned whitelist = %q, want %q", s, tc.want)
			}
			if s := whitelistOf(t); !slices.Equal(s, tc.want) {
				t.Fatalf("stored whitelist = %q, want %q", s, tc.want)
			}
			if _, err := svc.Validate(ctx, key, tc.allow); err != nil {
				t.Fatalf("Validate from %s: %v", tc.allow, err)
			}
			if tc.deny != "" {
				_, err := svc.Validate(ctx, key, tc.deny)
				wantKind(t, err, apierr.IPNotAllowed)
			}
		})
	}

	t.Run("invalid entry rejected, whitelist unchanged", func(t *testing.T) {
		if _, err := svc.SetWhitelist(ctx, k.ID, []string{"192.0.2.7"}); err != nil {
			t.Fatal(err)
		}
		_, err := svc.SetWhitelist(ctx, k.ID, []string{"10.0.0.1", "10.0.0.0/99"})
		wantKind(t, err, apierr.InvalidRequest)
		if msg := err.(*apierr.Error).Message; !strings.Contains(msg, "10.0.0.0/99") {
			t.Errorf("message %q does not name the bad entry", msg)
		}
		if s := whitelistOf(t); !slices.Equal(s, []string{"192.0.2.7"}) {
			t.Fatalf("whitelist after rejected set = %q", s)
		}
	})

	t.Run("unknown id", func(t *testing.T) {
		for _, id := range []int64{k.ID + 1000, 0} {
			_, err := svc.SetWhitelist(ctx, id, []string{"192.0.2.1"})
			wantKind(t, err, apierr.NotFound)
		}
	})

	t.Run("revoked key may be changed and stays revoked", func(t *testing.T) {
		if _, err := svc.Revoke(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		got, err := svc.SetWhitelist(ctx, k.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Revoked() {
			t.Fatal("SetWhitelist un-revoked the key")
		}
		_, err = svc.Validate(ctx, key, "192.0.2.7")
		wantKind(t, err, apierr.InvalidAPIKey)
	})
}

func TestValidateReadsEveryTime(t *testing.T) {
	// No cache in this service: a revocation written by another replica
	// (here: straight into the table) is seen by the very next call.
	svc, db := newService(t)
	ctx := context.Background()
	k, key := create(t, svc, apikey.CreateRequest{})
	if _, err := svc.Validate(ctx, key, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("UPDATE api_keys SET revoked_at = ? WHERE id = ?", time.Now(), k.ID).Error; err != nil {
		t.Fatal(err)
	}
	_, err := svc.Validate(ctx, key, "192.0.2.1")
	wantKind(t, err, apierr.InvalidAPIKey)
}

// Check answers by id, for the tokens issued to a key: active keys only.
func TestCheck(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	active, _ := create(t, svc, apikey.CreateRequest{Name: "active"})
	revoked, _ := create(t, svc, apikey.CreateRequest{Name: "revoked"})
	if _, err := svc.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		id   int64
		want apierr.Kind // "" for the key's record
	}{
		{"active", active.ID, ""},
		{"revoked", revoked.ID, apierr.InvalidAPIKey},
		{"unknown", revoked.ID + 1000, apierr.InvalidAPIKey},
		{"zero", 0, apierr.InvalidAPIKey},
		{"negative", -1, apierr.InvalidAPIKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := svc.Check(ctx, tt.id)
			if tt.want == "" {
				if err != nil || k.ID != tt.id || k.Name != "active" {
					t.Fatalf("Check = %+v, %v; want the active key", k, err)
				}
				return
			}
			wantKind(t, err, tt.want)
		})
	}
}
