package gateway

import (
	"bytes"
	"io"
	"net/http"

	"github.com/moreline/moreid/platform/apierr"
)

// limitBody reads the whole body, at most MaxBodyBytes, before the request
// goes on. Counting the bytes actually read (not trusting Content-Length,
// which may be absent with chunked encoding) is what enforces the limit; a
// body that announces more is refused before reading. Buffering also means a
// valid JSON object followed by padding cannot slip past the limit, since
// grpc-gateway itself would stop reading after the first JSON value.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			tooLarge(w, r)
			return
		}
		data, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
		if err != nil || len(data) > MaxBodyBytes {
			tooLarge(w, r)
			return
		}
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(data))
		r.ContentLength = int64(len(data))
		next.ServeHTTP(w, r)
	})
}

// tooLarge answers 400 and closes the connection: the rest of the body is
// not worth reading.
func tooLarge(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	writeKind(w, r, apierr.InvalidRequest)
}
