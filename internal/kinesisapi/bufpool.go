package kinesisapi

import (
	"context"
	"errors"
	"io"
	"math"
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

	// stage is the request's record-sized buffer for body writes, taken by one write at a
	// time: the transport may write a retried request's new body while the old one's
	// write is still returning, and that one makes its own.
	stage atomic.Pointer[[tlsRecord]byte]
	pool  *bufPool
}

func (r *request) takeStage() []byte {
	if s := r.stage.Swap(nil); s != nil {
		return s[:]
	}
	return make([]byte, tlsRecord)
}

func (r *request) putStage(s []byte) { r.stage.Store((*[tlsRecord]byte)(s)) }

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

func (r *request) bytes() int64 { return int64(cap(r.frame) + 24*cap(r.segs) + tlsRecord) }

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

// body reads a request's segments. It references the caller's record data until it is
// closed and no write from it is under way.
type body struct {
	req     *request
	mu      sync.Mutex // Read, WriteTo and Close may come from different goroutines of the transport
	segs    [][]byte   // what is left to send; owned by WriteTo while writing
	off     int        // into segs[0]
	closed  bool
	writing bool // a WriteTo is sending from the request's memory outside mu
}

// errBusy is a Read or WriteTo while a WriteTo is under way: a body is one stream.
var errBusy = errors.New("kinesisapi: request body read while it is being written")

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, io.ErrClosedPipe
	}
	if b.writing {
		return 0, errBusy
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

// WriteTo writes the rest of the body to w: see writeTo.
func (b *body) WriteTo(w io.Writer) (int64, error) { return b.writeTo(w, math.MaxInt64) }

// tlsRecord is the largest plaintext a TLS record carries. A Write to a tls.Conn becomes one
// record (and one write syscall) per tlsRecord bytes or part of it, so writes of whole
// records keep records full.
const tlsRecord = 16 << 10

// writeTo writes at most limit bytes of the body to w and returns how many it wrote. Runs
// of whole TLS records go to w straight from the segments (the caller's record data), with
// no copy; what is left over around them (CBOR framing, the ends of records) is gathered
// in a record-sized stage first, so that small segments do not each cost a TLS record and
// a syscall. Close during a write stops it at the next Write, and the request's memory
// stays unreused until the write has returned (see release).
func (b *body) writeTo(w io.Writer, limit int64) (n int64, err error) {
	b.mu.Lock()
	if b.closed || b.writing {
		b.mu.Unlock()
		if b.writing {
			return 0, errBusy
		}
		return 0, io.ErrClosedPipe
	}
	b.writing = true
	segs, off := b.segs, b.off
	b.mu.Unlock()
	stage := b.req.takeStage()
	defer func() {
		b.req.pool.bodyWrites.Add(n)
		b.req.putStage(stage)
		b.mu.Lock()
		b.writing = false
		b.segs, b.off = segs, off
		if b.closed {
			b.done()
		}
		b.mu.Unlock()
	}()
	staged := stage[:0]
	write := func(p []byte) error {
		if b.isClosed() {
			return io.ErrClosedPipe
		}
		m, err := w.Write(p)
		n += int64(m)
		if err == nil && m < len(p) {
			err = io.ErrShortWrite
		}
		return err
	}
	for len(segs) > 0 && limit > 0 {
		p := segs[0][off:]
		if int64(len(p)) > limit {
			p = p[:limit]
		}
		var c int
		if len(staged) == 0 && len(p) >= tlsRecord {
			c = len(p) &^ (tlsRecord - 1)
			if err := write(p[:c]); err != nil {
				return n, err
			}
		} else {
			c = copy(staged[len(staged):cap(staged)], p)
			staged = staged[:len(staged)+c]
			if len(staged) == cap(staged) {
				if err := write(staged); err != nil {
					return n, err
				}
				staged = staged[:0]
			}
		}
		limit -= int64(c)
		off += c
		if off == len(segs[0]) {
			segs, off = segs[1:], 0
		}
	}
	if len(staged) > 0 {
		if err := write(staged); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (b *body) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		if !b.writing {
			b.done()
		}
	}
	return nil
}

// done tells the request that this body no longer reads its memory. Called with mu held,
// once: by Close, or by the WriteTo that Close interrupted.
func (b *body) done() {
	b.segs = nil
	b.req.open.Add(-1)
	select {
	case b.req.closed <- struct{}{}:
	default:
	}
}

// bufPool keeps up to max requests for reuse and counts the bytes of every request buffer
// it handed out or keeps (held): those in use and those kept.
type bufPool struct {
	free chan *request
	held atomic.Int64

	bodyWrites atomic.Int64 // body bytes written by body.writeTo, not copied through Read (tests)
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
		return &request{closed: make(chan struct{}, 1), pool: p}
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
