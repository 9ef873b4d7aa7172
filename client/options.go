package client

import (
	"crypto/tls"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/moreline/moreid/proto/tlsfile"
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
		cert, err := tlsfile.Load(certFile, keyFile)
		if err != nil {
			return err
		}
		pool, err := tlsfile.Pool(caFile)
		if err != nil {
			return fmt.Errorf("TLS CA: %w", err)
		}
		c.tls = grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			MinVersion:           tls.VersionTLS13,
			RootCAs:              pool,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert.Get() },
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
