package app

import (
	"strings"
	"testing"
	"time"

	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/services/auth/internal/signing"
)

func TestSigningSettings(t *testing.T) {
	const secretKEK = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYiE=" // 32 bytes
	tests := []struct {
		name        string
		env         map[string]string
		wantErr     string // the variable the error names; "" for none
		wantDefault bool
		wantSealID  string
		wantIssuer  string
		wantProp    time.Duration
	}{
		{name: "defaults", env: map[string]string{}, wantDefault: true, wantSealID: kekID(t, signing.DevKEK),
			wantIssuer: DefaultIssuer, wantProp: DefaultSigningKeyPropagation},
		{name: "set", env: map[string]string{"MOREID_KEY_ENCRYPTION_KEY": secretKEK + "," + signing.DevKEK,
			"MOREID_ISSUER": "https://id.example.com", "MOREID_SIGNING_KEY_PROPAGATION": "30s"},
			wantSealID: kekID(t, secretKEK), wantIssuer: "https://id.example.com", wantProp: 30 * time.Second},
		{name: "short KEK", env: map[string]string{"MOREID_KEY_ENCRYPTION_KEY": "c2hvcnQtc2VjcmV0"}, wantErr: "MOREID_KEY_ENCRYPTION_KEY"},
		{name: "issuer with a query", env: map[string]string{"MOREID_ISSUER": "https://id.example.com?x=1"}, wantErr: "MOREID_ISSUER"},
		{name: "issuer with a trailing slash", env: map[string]string{"MOREID_ISSUER": "https://id.example.com/"}, wantErr: "MOREID_ISSUER"},
		{name: "issuer not a URL", env: map[string]string{"MOREID_ISSUER": "id.example.com"}, wantErr: "MOREID_ISSUER"},
		{name: "negative propagation", env: map[string]string{"MOREID_SIGNING_KEY_PROPAGATION": "-1s"}, wantErr: "MOREID_SIGNING_KEY_PROPAGATION"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := config.FromMap(tt.env)
			s := ReadSettings(r)
			err := r.Err()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				if v := tt.env["MOREID_KEY_ENCRYPTION_KEY"]; v != "" && strings.Contains(err.Error(), v) {
					t.Fatalf("the error shows the KEK: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.KEKDefault != tt.wantDefault || s.KEKs.SealID() != tt.wantSealID {
				t.Errorf("KEK default %v seal %s, want %v %s", s.KEKDefault, s.KEKs.SealID(), tt.wantDefault, tt.wantSealID)
			}
			if s.Issuer != tt.wantIssuer || s.SigningKeyPropagation != tt.wantProp {
				t.Errorf("issuer %q propagation %s, want %q %s", s.Issuer, s.SigningKeyPropagation, tt.wantIssuer, tt.wantProp)
			}
		})
	}
}

func kekID(t *testing.T, kek string) string {
	t.Helper()
	k, err := signing.ParseKEKs(kek)
	if err != nil {
		t.Fatal(err)
	}
	return k.SealID()
}
