package grpcx

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/proto/tlsfile"
)

// The variables of Security (README, Configuration).
const (
	EnvTLSCert        = "MOREID_TLS_CERT"
	EnvTLSKey         = "MOREID_TLS_KEY"
	EnvTLSCA          = "MOREID_TLS_CA"
	EnvAdminClientCA  = "MOREID_ADMIN_CLIENT_CA"
	EnvAllowPlaintext = "MOREID_ALLOW_PLAINTEXT"
)

// Security is how a component's gRPC links are protected. With TLS
// (MOREID_TLS_CERT, MOREID_TLS_KEY and MOREID_TLS_CA all set) every link
// is mutual TLS: a public listener admits only clients whose certificate
// MOREID_TLS_CA signed (the other components and internal callers), an
// admin listener only clients whose certificate MOREID_ADMIN_CLIENT_CA
// signed (operators: a CA of their own, so that no component certificate
// can reach an admin RPC), and every dial presents the component's
// certificate and verifies the server's against MOREID_TLS_CA.
//
// Without TLS the links are plaintext, which is allowed only where no other
// machine can listen in: a public listener must be on a loopback address
// unless MOREID_ALLOW_PLAINTEXT=1, and an admin listener always.
type Security struct {
	cert           *tlsfile.Pair // nil: plaintext
	peers          *x509.CertPool
	operators      *x509.CertPool // nil: no admin listener can start with TLS
	allowPlaintext bool
	// health are the MOREID_<COMPONENT>_HEALTH_ADDR listeners: plaintext
	// grpc.health.v1 alone, for the kubelet's gRPC probe, which speaks no
	// TLS. Off when unset.
	health map[string]string
}

// healthComponents are the components with gRPC listeners.
var healthComponents = []string{"auth", "user", "apikey"}

// ReadSecurity reads the TLS variables, recording every bad one in r as
// the other settings do. The files are read now, so that a missing or
// malformed one stops the process at start; the certificate and key are
// read again whenever they change on disk (a rotation by cert-manager or a
// Secret update), the CAs only at start. The error is r.Err(), for a caller
// that reads nothing else (a client dialling as a component does, a test);
// a process reading more settings from r checks r.Err once, at the end.
func ReadSecurity(r *config.Reader) (*Security, error) {
	certPath, keyPath, caPath := r.String(EnvTLSCert, ""), r.String(EnvTLSKey, ""), r.String(EnvTLSCA, "")
	adminCA := r.String(EnvAdminClientCA, "")
	s := &Security{health: map[string]string{}, allowPlaintext: r.Flag(EnvAllowPlaintext)}
	for _, c := range healthComponents {
		if a := r.String("MOREID_"+strings.ToUpper(c)+"_HEALTH_ADDR", ""); a != "" {
			s.health[c] = a
		}
	}
	s.load(r, certPath, keyPath, caPath, adminCA)
	return s, r.Err()
}

// load reads the TLS files, recording what is wrong with them in r.
func (s *Security) load(r *config.Reader, certPath, keyPath, caPath, adminCA string) {
	paths := map[string]string{EnvTLSCert: certPath, EnvTLSKey: keyPath, EnvTLSCA: caPath}
	var unset []string
	for _, name := range []string{EnvTLSCert, EnvTLSKey, EnvTLSCA} {
		if paths[name] == "" {
			unset = append(unset, name)
		}
	}
	switch {
	case len(unset) == 3 && adminCA == "":
		return
	case len(unset) > 0:
		for _, name := range unset {
			r.Fail(name, "", fmt.Errorf("unset, but TLS needs %s, %s and %s together", EnvTLSCert, EnvTLSKey, EnvTLSCA))
		}
		return
	}
	cert, err := tlsfile.Load(certPath, keyPath)
	if err != nil {
		r.Fail(EnvTLSCert, certPath, err)
	}
	peers, err := tlsfile.Pool(caPath)
	if err != nil {
		r.Fail(EnvTLSCA, caPath, err)
	}
	if adminCA != "" {
		if s.operators, err = tlsfile.Pool(adminCA); err != nil {
			r.Fail(EnvAdminClientCA, adminCA, err)
		} else if peers != nil && s.operators.Equal(peers) {
			// Then every component's certificate would be an operator's.
			r.Fail(EnvAdminClientCA, adminCA, fmt.Errorf("must be another CA than %s: the operators' own", EnvTLSCA))
		}
	}
	if cert != nil && peers != nil {
		s.cert, s.peers = cert, peers
	}
}

// Plaintext is the Security of a local suite: no TLS, loopback listeners
// only.
func Plaintext() *Security { return &Security{health: map[string]string{}} }

// TLS reports whether the links are mutual TLS.
func (s *Security) TLS() bool { return s.cert != nil }

// DialOptions are the options that make a connection to another component
// present this component's certificate; none without TLS (DialOptions'
// plaintext default stays).
func (s *Security) DialOptions() []grpc.DialOption {
	if !s.TLS() {
		return nil
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion:           tls.VersionTLS13,
		RootCAs:              s.peers,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return s.cert.Get() },
	}))}
}

// serverOption is the transport of a listener at addr: mutual TLS with
// clients signed by clients, or plaintext where the rule above allows it.
// what names the listener and its variable in errors.
func (s *Security) serverOption(what, addr string, admin bool) (grpc.ServerOption, error) {
	if !s.TLS() {
		if loopback(addr) || (s.allowPlaintext && !admin) {
			return nil, nil
		}
		if admin {
			return nil, fmt.Errorf("%s %s: an admin listener without TLS must be on a loopback address (set %s, %s, %s and %s)",
				what, addr, EnvTLSCert, EnvTLSKey, EnvTLSCA, EnvAdminClientCA)
		}
		return nil, fmt.Errorf("%s %s: plaintext gRPC on a non-loopback address (set %s, %s and %s, or %s=1 on a network of your own)",
			what, addr, EnvTLSCert, EnvTLSKey, EnvTLSCA, EnvAllowPlaintext)
	}
	clients := s.peers
	if admin {
		if s.operators == nil {
			return nil, fmt.Errorf("%s %s: TLS is on but %s (the CA of operator certificates) is not set", what, addr, EnvAdminClientCA)
		}
		clients = s.operators
	}
	return grpc.Creds(credentials.NewTLS(&tls.Config{
		MinVersion:     tls.VersionTLS13,
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      clients,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Get() },
	})), nil
}

// loopback reports whether addr ("127.0.0.1:9090", "[::1]:9090",
// "localhost:9090") can be reached only from this machine. ":9090" and
// "0.0.0.0:9090" listen on every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// ClientTLS is the transport of a client outside the suite (moreidctl, an
// internal service): it presents the certificate in certPath/keyPath and
// trusts servers signed by the CA in caPath.
func ClientTLS(certPath, keyPath, caPath string) (grpc.DialOption, error) {
	cert, err := tlsfile.Load(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	pool, err := tlsfile.Pool(caPath)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion:           tls.VersionTLS13,
		RootCAs:              pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert.Get() },
	})), nil
}
