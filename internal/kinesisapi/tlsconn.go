package kinesisapi

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
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
//
// While a body is written, the TLS records go to the socket gathered (gatherConn): a
// *tls.Conn writes each 16 KiB record with its own write syscall, and on loopback (the
// benchmark) as on a NIC with segmentation offload the kernel's cost is per write and per
// packet as much as per byte. Gathering 128 KiB per write took a third off the system CPU
// of sending (sender and receiver together), for a copy of the ciphertext that costs less.
type bodyConn struct {
	*tls.Conn
	raw *gatherConn
}

func (c bodyConn) ReadFrom(r io.Reader) (n int64, err error) {
	var b *body
	limit := int64(math.MaxInt64)
	lr, isLimited := r.(*io.LimitedReader)
	if isLimited {
		b, _ = lr.R.(*body)
		limit = lr.N
	} else {
		b, _ = r.(*body)
	}
	if b == nil {
		return io.Copy(c.Conn, r)
	}
	c.raw.gather(true)
	n, err = b.writeTo(c.Conn, limit)
	// The body ends the request: what is gathered goes out before the transport waits
	// for the answer, and if it cannot, the request fails with the error.
	if ferr := c.raw.gather(false); err == nil {
		err = ferr
	}
	if isLimited {
		lr.N -= n
	}
	return n, err
}

// gatherBytes is the most a gatherConn holds. Sending and receiving 3 GiB over loopback TLS
// (BenchmarkPutRecordsTLS) took 1.31 system CPU s with a write per record, and 1.25, 0.99,
// 0.86, 0.95 and 0.81 s gathering 2, 4, 8, 16 and 64 records (±0.1): past 8 the gain is
// small for the memory, one buffer per connection, made at its first body.
const gatherBytes = 128 << 10

// gatherConn is the socket under a bodyConn's TLS. Between gather(true) and gather(false)
// it collects writes and sends them gatherBytes at a time; otherwise (the handshake,
// headers, alerts) it writes through. Its mutex orders the TLS writer and a close_notify
// sent by Close from another goroutine.
type gatherConn struct {
	net.Conn
	mu  sync.Mutex
	on  bool
	buf []byte
}

// gather switches gathering on or off; switching it off sends what was gathered.
func (g *gatherConn) gather(on bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.on = on
	if on {
		if g.buf == nil {
			g.buf = make([]byte, 0, gatherBytes)
		}
		return nil
	}
	return g.flushLocked()
}

func (g *gatherConn) flushLocked() error {
	if len(g.buf) == 0 {
		return nil
	}
	_, err := g.Conn.Write(g.buf)
	g.buf = g.buf[:0]
	return err
}

func (g *gatherConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.on {
		return g.Conn.Write(p)
	}
	if len(g.buf)+len(p) > cap(g.buf) {
		if err := g.flushLocked(); err != nil {
			return 0, err
		}
	}
	if len(p) > cap(g.buf) {
		return g.Conn.Write(p)
	}
	g.buf = append(g.buf, p...)
	return len(p), nil
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
		gc := &gatherConn{Conn: raw}
		tc := tls.Client(gc, cfg)
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
		return bodyConn{tc, gc}, nil
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
