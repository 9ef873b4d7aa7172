package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/moreline/moreid/client"
)

// The deadline the server sees: DefaultTimeout when the caller gave none,
// WithTimeout's when set, none with WithTimeout(0), and the caller's own
// whenever it has one.
func TestTimeout(t *testing.T) {
	hour, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	tests := []struct {
		name string
		opts []client.Option
		ctx  context.Context
		want time.Duration // 0: no deadline
	}{
		{"default", nil, context.Background(), client.DefaultTimeout},
		{"WithTimeout", []client.Option{client.WithTimeout(3 * time.Minute)}, context.Background(), 3 * time.Minute},
		{"WithTimeout(0)", []client.Option{client.WithTimeout(0)}, context.Background(), 0},
		{"the caller's deadline wins", []client.Option{client.WithTimeout(time.Second)}, hour, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAuth()
			c := dial(t, serve(t, f), goodKey, tt.opts...)
			before := time.Now()
			if _, err := c.Introspect(tt.ctx, "token_x"); err != nil {
				t.Fatal(err)
			}
			got := f.received()[0].deadline
			switch {
			case tt.want == 0 && !got.IsZero():
				t.Fatalf("deadline %s, want none", got)
			case tt.want != 0 && (got.Before(before.Add(tt.want*9/10)) || got.After(time.Now().Add(tt.want))):
				t.Fatalf("deadline in %s, want %s", got.Sub(before), tt.want)
			}
		})
	}

	// A call the service never answers ends at the timeout.
	c := dial(t, serve(t, newFakeAuth()), goodKey, client.WithTimeout(50*time.Millisecond))
	if err := c.RevokeToken(context.Background(), "slow"); !errors.Is(err, client.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnavailable and context.DeadlineExceeded", err)
	}
}

// A bad option fails Dial, naming what is wrong and nothing of the files'
// content.
func TestDialOptionErrors(t *testing.T) {
	pki := newPKI(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a PEM secret-ish"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opt  client.Option
		want string
	}{
		{"missing certificate", client.WithTLSFiles("/nonexistent/tls.crt", pki.key, pki.ca), "/nonexistent/tls.crt"},
		{"key is not PEM", client.WithTLSFiles(pki.cert, garbage, pki.ca), garbage},
		{"CA is not PEM", client.WithTLSFiles(pki.cert, pki.key, garbage), garbage},
		{"missing CA", client.WithTLSFiles(pki.cert, pki.key, "/nonexistent/ca.crt"), "/nonexistent/ca.crt"},
		{"negative timeout", client.WithTimeout(-time.Second), "negative timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.Dial("127.0.0.1:9090", goodKey, tt.opt)
			if c != nil || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Dial = %v, %v; want an error naming %q", c, err, tt.want)
			}
			if strings.Contains(err.Error(), "secret-ish") {
				t.Errorf("the error shows the file's content: %v", err)
			}
		})
	}
}

// With WithTLSFiles the client reaches a server that demands a certificate
// of its CA; without it, the same server is unavailable to it.
func TestTLS(t *testing.T) {
	pki := newPKI(t)
	serverCert, err := tls.LoadX509KeyPair(pki.cert, pki.key)
	if err != nil {
		t.Fatal(err)
	}
	creds := credentials.NewTLS(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{serverCert},
		ClientCAs:    pki.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	})
	f := newFakeAuth()
	addr := serve(t, f, grpc.Creds(creds))

	c := dial(t, addr, goodKey, client.WithTLSFiles(pki.cert, pki.key, pki.ca))
	if _, err := c.Introspect(callCtx(t), "token_x"); err != nil {
		t.Fatalf("over TLS: %v", err)
	}
	plain := dial(t, addr, goodKey)
	if _, err := plain.Introspect(callCtx(t), "token_x"); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("plaintext to a TLS server: %v, want ErrUnavailable", err)
	}
	if n := len(f.received()); n != 1 {
		t.Fatalf("%d calls reached the server, want the TLS one alone", n)
	}
}

// testPKI is a CA and one certificate it signed, for 127.0.0.1, usable by
// both ends; the files are PEM in a temporary directory.
type testPKI struct {
	ca, cert, key string
	pool          *x509.CertPool
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey := newKey()
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "component"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return testPKI{
		ca:   write("ca.crt", "CERTIFICATE", caDER),
		cert: write("tls.crt", "CERTIFICATE", leafDER),
		key:  write("tls.key", "PRIVATE KEY", keyDER),
		pool: pool,
	}
}
