package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// DefaultTimeout is the deadline of a call whose context has none (see
// WithTimeout): the service answers in milliseconds, so a call that has
// not ended by then never will, and a caller that forgot a deadline should
// not hang on it.
const DefaultTimeout = 10 * time.Second

// An Option configures Dial.
type Option func(*config) error

type config struct {
	tls     grpc.DialOption // nil: plaintext
	timeout time.Duration
	extra   []grpc.DialOption
}

// WithTLSFiles is the option of a suite with mutual TLS (every deployment
// but a local one on loopback): the calling service presents the
// certificate in certFile (with its key in keyFile, both PEM, e.g. a
// cert-manager Secret's tls.crt and tls.key) and trusts the servers signed
// by the CA in caFile. Dial reads the files, and fails when they are not a
// certificate, key and CA; the certificate is read again whenever it
// changes on disk, so a rotation needs no restart.
func WithTLSFiles(certFile, keyFile, caFile string) Option {
	return func(c *config) error {
		cert, err := loadCertFile(certFile, keyFile)
		if err != nil {
			return err
		}
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return fmt.Errorf("TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("TLS CA %s: no PEM certificate in it", caFile)
		}
		c.tls = grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			MinVersion:           tls.VersionTLS13,
			RootCAs:              pool,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert.get() },
		}))
		return nil
	}
}

// WithTimeout sets the deadline of every call whose context has none
// (DefaultTimeout unless set); 0 leaves such calls without one. A context's
// own deadline always wins.
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("negative timeout %s", d)
		}
		c.timeout = d
		return nil
	}
}

// WithGRPCOptions passes options to grpc.NewClient after the client's own
// (e.g. a stats handler for tracing, or a custom resolver).
func WithGRPCOptions(opts ...grpc.DialOption) Option {
	return func(c *config) error {
		c.extra = append(c.extra, opts...)
		return nil
	}
}

// dialOptions is the client's connection: keepalive so a dead peer is
// noticed between calls, round robin over every address the resolver gives
// (the replicas behind a headless Service), the transport c chose.
func (c *config) dialOptions() []grpc.DialOption {
	transport := c.tls
	if transport == nil {
		transport = grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return append([]grpc.DialOption{
		transport,
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
	}, c.extra...)
}

// certFile is a certificate and key pair on disk, read again when either
// file's modification time or size changes, so that a rotated certificate
// is used from the next handshake on. A rotation caught half written keeps
// the previous pair until both files agree. (platform/grpcx does the same
// for the services; the client may not import platform.)
type certFile struct {
	certPath, keyPath string

	mu                sync.Mutex
	cert              *tls.Certificate
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func loadCertFile(certPath, keyPath string) (*certFile, error) {
	c := &certFile{certPath: certPath, keyPath: keyPath}
	if _, err := c.get(); err != nil {
		return nil, err
	}
	return c, nil
}

// get returns the current pair. Handshakes are rare (connections live for
// minutes), so two stats per handshake cost nothing.
func (c *certFile) get() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ci, err1 := os.Stat(c.certPath)
	ki, err2 := os.Stat(c.keyPath)
	if err := errors.Join(err1, err2); err != nil {
		if c.cert != nil {
			return c.cert, nil // a rotation in progress (a Secret's symlink swap)
		}
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	if c.cert != nil && ci.ModTime().Equal(c.certMod) && ki.ModTime().Equal(c.keyMod) && ci.Size() == c.certSize && ki.Size() == c.keySize {
		return c.cert, nil
	}
	pair, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
	if err != nil {
		if c.cert != nil {
			return c.cert, nil
		}
		// The error names the files, never their content.
		return nil, fmt.Errorf("TLS certificate %s / key %s: %w", c.certPath, c.keyPath, err)
	}
	c.cert = &pair
	c.certMod, c.keyMod, c.certSize, c.keySize = ci.ModTime(), ki.ModTime(), ci.Size(), ki.Size()
	return c.cert, nil
}
