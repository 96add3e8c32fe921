package kinesisapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// recordSizes straddle the body writer's cases: records below, at and just above a TLS
// record (staged, or sent straight from the caller's memory with a staged tail), large ones
// with odd tails, and small ones between them.
var recordSizes = []int{1, 100, tlsRecord - 1, tlsRecord, tlsRecord + 1, 3, 40_000, 1 << 20, 7, 2*tlsRecord - 5, 1<<20 + 13, 2}

func sizedInput(sizes []int, rnd *rand.Rand) *kinesis.PutRecordsInput {
	in := &kinesis.PutRecordsInput{StreamName: aws.String("body-test")}
	for i, n := range sizes {
		d := make([]byte, n)
		for j := range d {
			d[j] = byte(rnd.Uint32())
		}
		in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: d, PartitionKey: aws.String(fmt.Sprint("key-", i))})
	}
	return in
}

// encodedRequest encodes in as the client does, and returns the request and its body as
// one slice.
func encodedRequest(in *kinesis.PutRecordsInput, p Protocol) (*request, []byte) {
	r := newBufPool(1).get()
	if p == JSON {
		r.frame = appendJSON(r.grow(jsonSize(in)), in, sha256.New())
		r.segs = append(r.segs, r.frame)
		r.size = len(r.frame)
	} else {
		r.growSegs(2*len(in.Records) + 1)
		r.frame, r.segs, r.size = encodeCBOR(r.grow(cborFramingSize(in)), r.segs, in, sha256.New())
	}
	return r, bytes.Join(r.segs, nil)
}

// The bytes a real net/http server receives over TLS are the encoding the payload hash was
// computed over, whichever way the body reached the connection: the signature verifies
// against the received body's SHA-256, and the body equals the segments in order (a skipped
// or repeated segment, or a stage written twice, fails here). The body goes to the TLS
// connection through its own writer, not a copy loop (bodyWrites counts it).
func TestBodyOverTLSIsTheEncoding(t *testing.T) {
	for _, p := range []Protocol{CBOR, JSON} {
		t.Run(p.String(), func(t *testing.T) {
			in := sizedInput(recordSizes, rand.New(rand.NewPCG(3, uint64(p))))
			_, want := encodedRequest(in, p)
			var mu sync.Mutex
			var got [][]byte
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					t.Error(err)
				}
				if err := verifySignature(r, body, aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, "kinesis"); err != nil {
					t.Error(err)
				}
				mu.Lock()
				got = append(got, body)
				mu.Unlock()
				ct, ans := okAnswer(p, len(in.Records))
				w.Header().Set("Content-Type", ct)
				_, _ = w.Write(ans)
			}))
			cfg := h2TLSEndpoint(t, srv)
			c, err := New(context.Background(), cfg, Options{Protocol: p, Endpoint: srv.URL, MaxInFlight: 2})
			if err != nil {
				t.Fatal(err)
			}
			const rounds = 3 // the later ones reuse pooled requests and kept-alive connections
			for range rounds {
				var wg sync.WaitGroup
				for range 2 {
					wg.Go(func() {
						if _, err := c.PutRecords(context.Background(), in); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 2*rounds {
				t.Fatalf("%d requests received, want %d", len(got), 2*rounds)
			}
			for i, b := range got {
				if !bytes.Equal(b, want) {
					t.Errorf("request %d: received %d bytes that differ from the %d encoded (first difference at %d)", i, len(b), len(want), firstDiff(b, want))
				}
			}
			if n, max := c.send.bufs.bodyWrites.Load(), int64(2*rounds*len(want)); n < max-int64(64<<10)*2*rounds || n > max {
				t.Errorf("%d body bytes went through the body's writer, want nearly all of %d", n, max)
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// recordingWriter keeps what it is given and the size of each Write, and fails the Write
// that would take it past failAt bytes (after taking what fits).
type recordingWriter struct {
	buf    bytes.Buffer
	writes []int
	failAt int
}

var errWire = errors.New("wire broke")

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, len(p))
	if w.failAt > 0 && w.buf.Len()+len(p) > w.failAt {
		n := w.failAt - w.buf.Len()
		w.buf.Write(p[:n])
		return n, errWire
	}
	return w.buf.Write(p)
}

// A body written to a TLS connection fills every TLS record but the last: each Write but the
// last is a whole number of records, so the small segments between records (CBOR framing)
// cost neither a record nor a syscall of their own.
func TestBodyWritesWholeRecords(t *testing.T) {
	for _, p := range []Protocol{CBOR, JSON} {
		in := sizedInput(recordSizes, rand.New(rand.NewPCG(4, uint64(p))))
		r, want := encodedRequest(in, p)
		var w recordingWriter
		b := r.newBody()
		n, err := b.(io.WriterTo).WriteTo(&w)
		if err != nil || n != int64(len(want)) || !bytes.Equal(w.buf.Bytes(), want) {
			t.Fatalf("%s: wrote %d of %d bytes, err %v, equal %v", p, n, len(want), err, bytes.Equal(w.buf.Bytes(), want))
		}
		for i, size := range w.writes[:len(w.writes)-1] {
			if size%tlsRecord != 0 {
				t.Errorf("%s: write %d of %d is %d bytes, not whole TLS records: %v", p, i, len(w.writes), size, w.writes)
				break
			}
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A retry sends the same bytes: after a body's write failed part way (wherever it broke), a
// new body of the same request (what the transport's GetBody returns) writes the whole
// encoding again, and so does a body read with Read.
func TestRetriedBodyIsTheSame(t *testing.T) {
	in := sizedInput(recordSizes, rand.New(rand.NewPCG(5, 6)))
	r, want := encodedRequest(in, CBOR)
	for _, failAt := range []int{1, 100, tlsRecord - 1, tlsRecord + 50, 300_000, len(want) - 1} {
		first := r.newBody()
		broken := recordingWriter{failAt: failAt}
		if _, err := first.(io.WriterTo).WriteTo(&broken); !errors.Is(err, errWire) {
			t.Fatalf("fail at %d: err = %v", failAt, err)
		}
		_ = first.Close()
		var again bytes.Buffer
		retry := r.newBody()
		if _, err := retry.(io.WriterTo).WriteTo(&again); err != nil || !bytes.Equal(again.Bytes(), want) {
			t.Errorf("fail at %d: the retried body (%d bytes, err %v) is not the encoding (%d bytes)", failAt, again.Len(), err, len(want))
		}
		_ = retry.Close()
	}
	read := r.newBody()
	got, err := io.ReadAll(struct{ io.Reader }{read}) // Read, not WriteTo
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("read body: %d bytes, err %v, want the %d of the encoding", len(got), err, len(want))
	}
	_ = read.Close()
	// A transport may write a retried request's new body while the old one's write has not
	// returned: the two must not share the request's stage.
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, 4)
	for i := range outs {
		wg.Go(func() {
			b := r.newBody()
			defer b.Close()
			if _, err := b.(io.WriterTo).WriteTo(&outs[i]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range outs {
		if !bytes.Equal(outs[i].Bytes(), want) {
			t.Errorf("concurrent body %d differs from the encoding", i)
		}
	}
}

// blockingWriter takes its first Write and blocks the second until released.
type blockingWriter struct {
	writes  atomic.Int32
	blocked chan struct{}
	release chan struct{}
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	if w.writes.Add(1) == 2 {
		close(w.blocked)
		<-w.release
	}
	return len(p), nil
}

// A body closed by the transport while its write is still under way keeps the request (and
// so the caller's records) from being reused until the write returns, and the write stops
// at its next Write.
func TestCloseDuringWrite(t *testing.T) {
	in := sizedInput(recordSizes, rand.New(rand.NewPCG(7, 8)))
	pool := newBufPool(1)
	r, _ := encodedRequest(in, CBOR)
	b := r.newBody()
	w := &blockingWriter{blocked: make(chan struct{}), release: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		_, err := b.(io.WriterTo).WriteTo(w)
		errc <- err
	}()
	<-w.blocked
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := r.open.Load(); n != 1 {
		t.Fatalf("%d bodies open after Close during a write, want 1 until the write returns", n)
	}
	released := make(chan struct{})
	go func() {
		r.release(context.Background(), pool)
		close(released)
	}()
	select {
	case <-released:
		t.Fatal("the request was released while its body was being written")
	case <-time.After(50 * time.Millisecond):
	}
	close(w.release)
	if err := <-errc; !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("write after Close: err = %v, want io.ErrClosedPipe", err)
	}
	<-released
	if n := w.writes.Load(); n != 2 {
		t.Errorf("%d writes, want the write stopped after the one under way at Close (2)", n)
	}
}

// The client's own TLS dialer keeps the transport's TLS handshake timeout: an endpoint that
// accepts connections and never answers the handshake fails the request with a timeout
// (transient for the shipper), not a request hung until its context ends.
func TestTLSHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	done := make(chan struct{})
	defer func() {
		close(done)
		_ = ln.Close()
		conns.Wait()
	}()
	conns.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { <-done; _ = c.Close() }) // never answers
		}
	})
	url := "https://" + ln.Addr().String()
	cfg := testConfig(t, url)
	c, err := New(context.Background(), cfg, Options{Endpoint: url, KinesisOptions: []func(*kinesis.Options){func(o *kinesis.Options) {
		o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.TLSHandshakeTimeout = 100 * time.Millisecond })
	}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.PutRecords(ctx, testInput(2, rand.New(rand.NewPCG(1, 1))))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || ctx.Err() != nil {
		t.Fatalf("err = %v, want a TLS handshake timeout well before the context's end", err)
	}
}

// recordingConn is a net.Conn that keeps the size of each Write.
type recordingConn struct {
	net.Conn
	writes []int
	total  int
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, len(p))
	c.total += len(p)
	return len(p), nil
}

// While a body is written its TLS records reach the socket in writes of up to gatherBytes,
// every byte of them, all before the body's write returns; other writes (handshake,
// headers, alerts) pass straight through.
func TestGatherConn(t *testing.T) {
	rc := &recordingConn{}
	g := &gatherConn{Conn: rc}
	record := make([]byte, tlsRecord+29)
	_, _ = g.Write(record[:100])
	if len(rc.writes) != 1 {
		t.Fatalf("a write outside a body was held: %v", rc.writes)
	}
	_ = g.gather(true)
	const records = 100
	for range records {
		if n, err := g.Write(record); n != len(record) || err != nil {
			t.Fatal(n, err)
		}
	}
	if err := g.gather(false); err != nil {
		t.Fatal(err)
	}
	if want := 100 + records*len(record); rc.total != want {
		t.Fatalf("%d bytes reached the socket, want %d", rc.total, want)
	}
	perWrite := gatherBytes / len(record)
	if max := 1 + (records+perWrite-1)/perWrite; len(rc.writes) > max {
		t.Errorf("%d socket writes for %d records, want at most %d: %v", len(rc.writes), records, max, rc.writes)
	}
	_, _ = g.Write(record[:7])
	if last := rc.writes[len(rc.writes)-1]; last != 7 {
		t.Errorf("a write after the body was held: %v", rc.writes)
	}
}

// Over TLS, a connection reset part way through a body and an endpoint that never reads
// the body (the request's deadline ends its write) each fail only their request: the
// requests after them on the same client arrive whole and verify, and the client holds no
// more buffers than its requests in flight.
func TestTLSBodyFaults(t *testing.T) {
	in := sizedInput(recordSizes, rand.New(rand.NewPCG(9, 10)))
	_, want := encodedRequest(in, CBOR)
	var requests atomic.Int32
	stop := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch requests.Add(1) % 3 {
		case 1: // reset part way through the body
			_, _ = io.CopyN(io.Discard, r.Body, 100_000)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		case 2: // never read the body, never answer
			select {
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		if !bytes.Equal(body, want) {
			t.Errorf("received %d bytes that differ from the %d encoded (first difference at %d)", len(body), len(want), firstDiff(body, want))
		}
		if err := verifySignature(r, body, aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, "kinesis"); err != nil {
			t.Error(err)
		}
		ct, ans := okAnswer(CBOR, len(in.Records))
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write(ans)
	}))
	defer close(stop)
	cfg := h2TLSEndpoint(t, srv)
	const maxInFlight = 2
	c, err := New(context.Background(), cfg, Options{Endpoint: srv.URL, MaxInFlight: maxInFlight})
	if err != nil {
		t.Fatal(err)
	}
	var ok, failed int
	for range 9 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.PutRecords(ctx, in)
		cancel()
		if err != nil {
			failed++
			continue
		}
		ok++
	}
	if ok != 3 || failed != 6 {
		t.Errorf("%d requests succeeded and %d failed, want 3 and 6", ok, failed)
	}
	if held, max := c.BufferBytes(), int64(maxInFlight*(cborFramingSize(in)+4096+24*64+tlsRecord)); held > max {
		t.Errorf("the client holds %d bytes of request buffers after the faults, want at most %d", held, max)
	}
}
