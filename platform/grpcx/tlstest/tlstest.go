// Package tlstest makes a throwaway public-key infrastructure for tests of
// the TLS links: a components' CA, an operators' CA and a stranger's CA,
// each with a certificate and key, written as PEM files into the test's
// temporary directory. Nothing is committed and nothing outlives the test.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// TB is what New needs of its caller (testing.TB satisfies it).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	TempDir() string
}

// Pair is a certificate and its key, as file paths.
type Pair struct{ Cert, Key string }

// PKI is the set of files. Every leaf names 127.0.0.1, ::1 and localhost,
// so that it is valid for any loopback listener.
type PKI struct {
	// CA signs the components (MOREID_TLS_CA); Component is one of them,
	// valid as a server and as a client.
	CA        string
	Component Pair
	// Gateway is a component certificate that also names "moreid-gateway"
	// (MOREID_GATEWAY_NAMES), valid as a client only.
	Gateway Pair
	// OperatorCA signs operators (MOREID_ADMIN_CLIENT_CA); Operator is one.
	OperatorCA string
	Operator   Pair
	// StrangerCA is nobody Moreid knows; Stranger is a component-like
	// certificate it signed, with the same names as Component.
	StrangerCA string
	Stranger   Pair
}

// New writes a fresh PKI under t.TempDir().
func New(t TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	g := &gen{t: t, dir: dir}
	p := &PKI{}
	var ca, opCA, strangerCA *issuer
	ca, p.CA = g.ca("moreid components")
	opCA, p.OperatorCA = g.ca("moreid operators")
	strangerCA, p.StrangerCA = g.ca("a stranger")
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	p.Component = g.leaf(ca, "component", "moreid-component", both)
	p.Gateway = g.leaf(ca, "gateway", "moreid-gateway", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, "moreid-gateway")
	p.Operator = g.leaf(opCA, "operator", "alice the operator", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	p.Stranger = g.leaf(strangerCA, "stranger", "moreid-component", both)
	return p
}

// ServerEnv is the environment of a component with mutual TLS: its
// certificate, the components' CA and the operators' CA.
func (p *PKI) ServerEnv() map[string]string {
	return map[string]string{
		"MOREID_TLS_CERT":        p.Component.Cert,
		"MOREID_TLS_KEY":         p.Component.Key,
		"MOREID_TLS_CA":          p.CA,
		"MOREID_ADMIN_CLIENT_CA": p.OperatorCA,
	}
}

// CtlEnv is moreidctl's environment with the operator's certificate.
func (p *PKI) CtlEnv() map[string]string {
	return map[string]string{
		"MOREID_CTL_CERT": p.Operator.Cert,
		"MOREID_CTL_KEY":  p.Operator.Key,
		"MOREID_CTL_CA":   p.CA,
	}
}

type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

type gen struct {
	t   TB
	dir string
	n   int64
}

func (g *gen) ca(name string) (*issuer, string) {
	g.t.Helper()
	key := g.key()
	tmpl := g.template(name)
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		g.t.Fatalf("tlstest: CA %s: %v", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		g.t.Fatalf("tlstest: %v", err)
	}
	path := filepath.Join(g.dir, strings.ReplaceAll(name, " ", "-")+"-ca.crt")
	g.write(path, "CERTIFICATE", der)
	return &issuer{cert: cert, key: key}, path
}

func (g *gen) leaf(ca *issuer, file, name string, usage []x509.ExtKeyUsage, dnsNames ...string) Pair {
	g.t.Helper()
	key := g.key()
	tmpl := g.template(name)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = usage
	tmpl.DNSNames = append([]string{"localhost"}, dnsNames...)
	tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		g.t.Fatalf("tlstest: certificate %s: %v", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		g.t.Fatalf("tlstest: %v", err)
	}
	p := Pair{Cert: filepath.Join(g.dir, file+".crt"), Key: filepath.Join(g.dir, file+".key")}
	g.write(p.Cert, "CERTIFICATE", der)
	g.write(p.Key, "PRIVATE KEY", keyDER)
	return p
}

func (g *gen) key() *ecdsa.PrivateKey {
	g.t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		g.t.Fatalf("tlstest: %v", err)
	}
	return k
}

func (g *gen) template(cn string) *x509.Certificate {
	g.n++
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: big.NewInt(g.n),
		Subject:      pkix.Name{CommonName: cn},
		// An hour back: the clocks of a slow test machine need no more.
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(24 * time.Hour),
	}
}

func (g *gen) write(path, typ string, der []byte) {
	g.t.Helper()
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		g.t.Fatalf("tlstest: %v", err)
	}
}
