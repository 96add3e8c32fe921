package kinesisapi

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
)

// request is one PutRecords body: segments (record data and the framing between them, which
// lives in frame), sent in order.
type request struct {
	frame []byte
	segs  [][]byte
	size  int

	open    atomic.Int32  // bodies the transport has not closed yet
	closed  chan struct{} // a body was closed
	counted int64         // bytes of frame and segs added to the pool's held count
}

// grow returns frame emptied, with room for n bytes. A too-small frame is replaced by one
// of exactly n bytes (rounded up), never grown by doubling.
func (r *request) grow(n int) []byte {
	if cap(r.frame) < n {
		r.frame = make([]byte, 0, (n+4095)&^4095)
	}
	return r.frame[:0]
}

// growSegs makes room for n segments, likewise.
func (r *request) growSegs(n int) {
	if cap(r.segs) < n {
		r.segs = make([][]byte, 0, (n+63)&^63)
	}
}

func (r *request) bytes() int64 { return int64(cap(r.frame) + 24*cap(r.segs)) }

func (r *request) newBody() io.ReadCloser {
	r.open.Add(1)
	return &body{req: r, segs: r.segs}
}

// release returns r to p once the transport has closed every body it was given (it may
// close one after Do has returned): until then a late write would read r's memory. If ctx
// ends first, r is left to the garbage collector instead of being reused.
func (r *request) release(ctx context.Context, p *bufPool) {
	p.count(r)
	for r.open.Load() > 0 {
		select {
		case <-r.closed:
		case <-ctx.Done():
			if r.open.Load() > 0 {
				p.drop(r)
				return
			}
		}
	}
	p.put(r)
}

// body reads a request's segments. It references the caller's record data until closed.
type body struct {
	req    *request
	segs   [][]byte
	off    int // into segs[0]
	closed bool
	mu     sync.Mutex // Read and Close may come from different goroutines of the transport
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, io.ErrClosedPipe
	}
	n := 0
	for n < len(p) && len(b.segs) > 0 {
		c := copy(p[n:], b.segs[0][b.off:])
		n += c
		b.off += c
		if b.off == len(b.segs[0]) {
			b.segs, b.off = b.segs[1:], 0
		}
	}
	if n == 0 && len(b.segs) == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		b.segs = nil
		b.req.open.Add(-1)
		select {
		case b.req.closed <- struct{}{}:
		default:
		}
	}
	return nil
}

// bufPool keeps up to max requests for reuse and counts the bytes of every request buffer
// it handed out or keeps (held): those in use and those kept.
type bufPool struct {
	free chan *request
	held atomic.Int64
}

func newBufPool(max int) *bufPool {
	if max <= 0 {
		max = 4
	}
	return &bufPool{free: make(chan *request, max)}
}

func (p *bufPool) get() *request {
	select {
	case r := <-p.free:
		return r
	default:
		return &request{closed: make(chan struct{}, 1)}
	}
}

// put clears r's references to record data and keeps it if there is room.
func (p *bufPool) put(r *request) {
	clear(r.segs)
	r.segs, r.size = r.segs[:0], 0
	select {
	case p.free <- r:
	default:
		p.drop(r)
	}
}

// count brings held up to date with r's buffers, which grow may have replaced.
func (p *bufPool) count(r *request) {
	n := r.bytes()
	p.held.Add(n - r.counted)
	r.counted = n
}

// drop forgets r (the garbage collector takes it).
func (p *bufPool) drop(r *request) {
	p.held.Add(-r.counted)
	r.counted = 0
}
