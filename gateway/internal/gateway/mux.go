package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/textproto"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/moreline/moreid/platform/logging"
	"github.com/moreline/moreid/proto/wire"
)

// newMux is the one place where the grpc-gateway ServeMux is configured.
func newMux() *runtime.ServeMux {
	return runtime.NewServeMux(
		// snake_case names exactly as documented, zero values present, int32
		// as JSON numbers; unknown request fields ignored (SPEC section 2).
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &jsonCodec{JSONPb: runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		}}),
		runtime.WithErrorHandler(handleError),
		runtime.WithRoutingErrorHandler(handleRoutingError),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		// Nothing the backend puts in response metadata reaches the client:
		// the REST contract is the JSON body and the headers we set here.
		runtime.WithOutgoingHeaderMatcher(dropHeader),
		runtime.WithOutgoingTrailerMatcher(dropHeader),
		runtime.WithMetadata(annotate),
		// Without these, a POST with a form content type would be served by
		// the GET handler of the same path (and X-HTTP-Method-Override could
		// pick any method), so a wrong method would not answer 405.
		runtime.WithDisablePathLengthFallback(),
		runtime.WithDisableHTTPMethodOverride(),
	)
}

// incomingHeader forwards only the headers the backend reads. Authorization
// is absent on purpose: grpc-gateway always forwards it itself, as
// "authorization", and matching it here would send it twice. Everything else
// (Grpc-Metadata-*, X-Moreid-Client-Ip, X-Forwarded-*, cookies) stays behind,
// so a client cannot set metadata the backend trusts; the session cookie
// reaches the backend only through annotate.
func incomingHeader(key string) (string, bool) {
	switch textproto.CanonicalMIMEHeaderKey(key) {
	case "X-Api-Key":
		return wire.APIKey, true
	case "X-Csrf-Token":
		return wire.CSRF, true
	case logging.RequestIDHeader:
		return logging.MetadataKey, true
	}
	return "", false
}

func dropHeader(string) (string, bool) { return "", false }

// annotate adds the gateway's own metadata. grpc-gateway lets annotator keys
// replace header-derived ones, so the cleaned request id wins over the raw
// header, and the x-forwarded-for / x-forwarded-host that grpc-gateway
// derives from client headers (client-supplied hops first) are replaced by
// nothing: the one address the backend may use is wire.ClientIP.
func annotate(_ context.Context, r *http.Request) metadata.MD {
	md := requestMD(r)
	md["x-forwarded-for"] = nil
	md["x-forwarded-host"] = nil
	return md
}

// requestMD is what the gateway itself tells the backend about a request,
// for the mux and the confirmation page alike: the client address, the
// request id and the web session from the moreid_session cookie. The
// session value is a secret: it goes into metadata and nowhere else.
func requestMD(r *http.Request) metadata.MD {
	md := metadata.MD{}
	if info := infoFrom(r.Context()); info != nil {
		md.Set(wire.ClientIP, info.clientIP.String())
		md.Set(logging.MetadataKey, info.id)
	}
	if c, err := r.Cookie(wire.SessionCookie); err == nil && c.Value != "" {
		md.Set(wire.Session, c.Value)
	}
	return md
}

// jsonCodec is runtime.JSONPb with a stricter request decoder: the whole body
// must be one JSON object (JSONPb alone decodes the first JSON value and
// ignores anything after it). An empty body decodes as an empty request, so
// the backend reports the missing fields.
type jsonCodec struct {
	runtime.JSONPb
}

func (c *jsonCodec) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return io.EOF
		}
		if m, ok := v.(proto.Message); ok {
			return c.UnmarshalOptions.Unmarshal(data, m)
		}
		return c.JSONPb.Unmarshal(data, v)
	})
}
