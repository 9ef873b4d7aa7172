// Package tlsfile reads the TLS files of a Moreid connection: a certificate
// and key pair read again when it changes on disk, and a CA bundle. It lives
// in the proto module because that is the one module both the services
// (platform/grpcx) and the standalone Go client (client/) require: one
// definition for both, and the client still needs nothing but proto.
package tlsfile

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Pair is a certificate and key pair on disk, read again when either file's
// modification time or size changes, so that a rotated certificate is used
// from the next handshake on without a restart. A rotation caught half
// written keeps the previous pair until both files agree.
type Pair struct {
	certPath, keyPath string

	mu                sync.Mutex
	cert              *tls.Certificate
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// Load reads the pair, failing when the files are not a certificate and
// its key.
func Load(certPath, keyPath string) (*Pair, error) {
	p := &Pair{certPath: certPath, keyPath: keyPath}
	if _, err := p.Get(); err != nil {
		return nil, err
	}
	return p, nil
}

// Get returns the current pair (for tls.Config's GetCertificate and
// GetClientCertificate). Handshakes are rare (connections live for
// minutes), so two stats per handshake cost nothing.
func (p *Pair) Get() (*tls.Certificate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ci, err1 := os.Stat(p.certPath)
	ki, err2 := os.Stat(p.keyPath)
	if err := errors.Join(err1, err2); err != nil {
		if p.cert != nil {
			return p.cert, nil // a rotation in progress (a Secret's symlink swap)
		}
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	if p.cert != nil && ci.ModTime().Equal(p.certMod) && ki.ModTime().Equal(p.keyMod) && ci.Size() == p.certSize && ki.Size() == p.keySize {
		return p.cert, nil
	}
	pair, err := tls.LoadX509KeyPair(p.certPath, p.keyPath)
	if err != nil {
		if p.cert != nil {
			return p.cert, nil
		}
		// The error names the files, never their content.
		return nil, fmt.Errorf("TLS certificate %s / key %s: %w", p.certPath, p.keyPath, err)
	}
	p.cert = &pair
	p.certMod, p.keyMod, p.certSize, p.keySize = ci.ModTime(), ki.ModTime(), ci.Size(), ki.Size()
	return p.cert, nil
}

// Pool reads the CA certificates in path. Its errors name the file, never
// its content (a key given by mistake must not reach the logs).
func Pool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}
