package kinesisapi

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"time"
)

// net/http sends a request body of known length over HTTP/1.1 as
//
//	bufio.Writer.ReadFrom(io.LimitReader(body, ContentLength))
//	  -> persistConnWriter.ReadFrom -> io.Copy(conn, limitedReader)
//
// and neither a *tls.Conn nor an *io.LimitedReader lets io.Copy skip its buffer: every
// request gets a new 32 KiB buffer and every byte of the body is copied into it before
// TLS encrypts it from there, 32 KiB per Write. A body's WriteTo is never asked.
//
// bodyConn is the TLS connection the transport is given instead (Transport.DialTLSContext):
// the same *tls.Conn, plus a ReadFrom that recognises the transport's LimitedReader around
// a body of this package and lets the body write itself (body.writeTo: whole TLS records
// straight from the records' memory). Any other reader is copied as io.Copy would.
type bodyConn struct {
	*tls.Conn
}

func (c bodyConn) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if b, ok := lr.R.(*body); ok {
			n, err := b.writeTo(c.Conn, lr.N)
			lr.N -= n
			return n, err
		}
	}
	if b, ok := r.(*body); ok {
		return b.writeTo(c.Conn, math.MaxInt64)
	}
	return io.Copy(c.Conn, r)
}

// tlsDialer returns a DialTLSContext for t that does what the transport does itself for an
// https URL (t's DialContext, then a TLS client handshake with a clone of t's TLS config,
// ServerName from the address, within t.TLSHandshakeTimeout) and returns a bodyConn.
// Connections through an HTTP proxy are still made by the transport (CONNECT, then its
// own TLS): their bodies are copied, as before.
func tlsDialer(t *http.Transport) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	base := t.TLSClientConfig
	if base == nil {
		base = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	timeout := t.TLSHandshakeTimeout
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cfg := base.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		tc := tls.Client(raw, cfg)
		hctx := ctx
		if timeout > 0 {
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		if err := tc.HandshakeContext(hctx); err != nil {
			_ = raw.Close()
			if hctx.Err() != nil && ctx.Err() == nil {
				return nil, tlsHandshakeTimeout{timeout}
			}
			return nil, err
		}
		return bodyConn{tc}, nil
	}
}

// tlsHandshakeTimeout is the transport's own "TLS handshake timeout" error: a net.Error
// whose Timeout is true, so that it is classified as the transport's would be.
type tlsHandshakeTimeout struct{ d time.Duration }

func (e tlsHandshakeTimeout) Error() string {
	return fmt.Sprintf("net/http: TLS handshake timeout (%s)", e.d)
}
func (tlsHandshakeTimeout) Timeout() bool   { return true }
func (tlsHandshakeTimeout) Temporary() bool { return true }
