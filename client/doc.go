// Package client is the Go client of Moreid for the platform's internal
// services: it dials AuthService and TokenService over gRPC, attaches the
// service's API key to every call, and returns failures as *Error values
// that errors.Is matches against ErrInvalidState, ErrInvalidToken and the
// other documented error codes.
//
//	c, err := client.Dial("dns:///moreid-auth:9090", os.Getenv("MOREID_API_KEY"),
//		client.WithTLSFiles("/tls/tls.crt", "/tls/tls.key", "/tls/ca.crt"))
//	if err != nil { ... }
//	defer c.Close()
//	info, err := c.Introspect(ctx, bearer)
//	tok, err := c.PasswordLogin(ctx, "alice", password)
//	if errors.Is(err, client.ErrInvalidCredentials) { ... }
//
// A call whose ctx has no deadline gets DefaultTimeout (see WithTimeout).
//
// # Getting it
//
// The client is its own module, github.com/moreline/moreid/client, and
// needs only github.com/moreline/moreid/proto (the generated gRPC code and
// the wire contract), gRPC and protobuf: importing it registers nothing in
// the caller's Prometheus registry and brings no tracing or platform code.
// Both are nested modules of the repository, tagged with their directory
// as prefix: client/vX.Y.Z and proto/vX.Y.Z. A release tags proto first,
// then sets client/go.mod's requirement to that proto version and tags
// client, so that
//
//	go get github.com/moreline/moreid/client@vX.Y.Z
//
// resolves both from the module proxy.
package client
