// Command fakekinesis is a fast loopback Kinesis endpoint for the pipeline benchmark: it
// answers PutRecords in JSON and CBOR over HTTPS, checks what a cheap check can (the SigV4
// Authorization header's shape, each KPL aggregate's MD5 trailer), counts records and bytes,
// and accepts everything. It is not a test oracle (kinesalite is): it stores nothing and
// checks no signature, so that the agent, not the endpoint, is what the benchmark measures.
//
// At start it writes a self-signed certificate for 127.0.0.1 (-cert, -key; reused if they
// exist) that the agent is told to trust with AWS_CA_BUNDLE, listens on -listen and writes
// its URL to -url-file. On SIGTERM or SIGINT it prints its counts as one JSON line.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
	md5simd "github.com/minio/md5-simd"
)

var kplMagic = []byte{0xF3, 0x89, 0x9A, 0xC2}

type stats struct {
	Requests    atomic.Int64 `json:"-"`
	Records     atomic.Int64 `json:"-"`
	Aggregates  atomic.Int64 `json:"-"`
	UserRecords atomic.Int64 `json:"-"`
	DataBytes   atomic.Int64 `json:"-"`
	BodyBytes   atomic.Int64 `json:"-"`
	MD5Errors   atomic.Int64 `json:"-"`
	AuthErrors  atomic.Int64 `json:"-"`
	BadRequests atomic.Int64 `json:"-"`
}

func (s *stats) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]int64{
		"requests": s.Requests.Load(), "records": s.Records.Load(), "aggregates": s.Aggregates.Load(),
		"user_records": s.UserRecords.Load(), "data_bytes": s.DataBytes.Load(), "body_bytes": s.BodyBytes.Load(),
		"md5_errors": s.MD5Errors.Load(), "auth_errors": s.AuthErrors.Load(), "bad_requests": s.BadRequests.Load(),
	})
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	certFile := flag.String("cert", "fakekinesis-cert.pem", "TLS certificate (written if missing)")
	keyFile := flag.String("key", "fakekinesis-key.pem", "TLS key (written if missing)")
	urlFile := flag.String("url-file", "", "write the endpoint URL here once listening")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile here (to check that the endpoint is not what limits a benchmark)")
	pace := flag.Duration("pace", 0, "PutRecords requests take turns, each holding the turn this long (a single-threaded endpoint's pace, without its CPU)")
	flag.Parse()
	if err := run(*listen, *certFile, *keyFile, *urlFile, *cpuProfile, *pace); err != nil {
		fmt.Fprintln(os.Stderr, "fakekinesis:", err)
		os.Exit(1)
	}
}

func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "fakekinesis: cpu profile:", err)
		}
	}, nil
}

func run(listen, certFile, keyFile, urlFile, cpuProfile string, pace time.Duration) error {
	if cpuProfile != "" {
		stop, err := startCPUProfile(cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if err := ensureCert(certFile, keyFile); err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	st := &stats{}
	md5s := newMD5Checker()
	srv := &http.Server{Handler: &handler{st: st, md5: md5s, pace: pace}, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	url := "https://" + ln.Addr().String()
	if urlFile != "" {
		if err := os.WriteFile(urlFile+".tmp", []byte(url+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.Rename(urlFile+".tmp", urlFile); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if srv.Shutdown(sctx) == nil { // else a handler may still send it work
		md5s.close()
	}
	b, _ := json.Marshal(st)
	fmt.Println(string(b))
	return nil
}

// ensureCert writes a self-signed ECDSA certificate for 127.0.0.1 and localhost, valid for a
// day, unless certFile and keyFile exist.
func ensureCert(certFile, keyFile string) error {
	if _, err := os.Stat(certFile); err == nil {
		if _, err := os.Stat(keyFile); err == nil {
			return nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "kinship benchmark"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

type handler struct {
	st   *stats
	md5  *md5Checker
	bufs sync.Pool
	// pace, when set, makes PutRecords requests take turns, each holding the one turn for
	// pace once its body is read: the pace of a single-threaded endpoint such as kinesalite,
	// without its CPU on the agent's cores. Comparing the agent's CPU here with and without
	// it tells what waiting for the destination costs the agent from what the endpoint's
	// neighbouring load costs it.
	pace   time.Duration
	paceMu sync.Mutex
}

// md5Check is one aggregate's MD5 check: the protobuf bytes and the trailer they must hash to.
type md5Check struct {
	pb, want []byte
	ok       bool
	done     *sync.WaitGroup
}

// md5Checker verifies aggregates' MD5 trailers side by side. MD5 is a serial chain within one
// message, and crypto/md5 (under 1 GB/s) took most of a core at the agent's 500 MB/s and
// more, so the endpoint, not the agent, set the benchmark's pace. md5-simd's server runs
// the chain for up to 16 messages at once (AVX-512; 8 with AVX2, crypto/md5 without
// either) for about the cost of one, but only for messages hashed at the same moment: a
// lone one runs its scalar code. So large aggregates are checked after the answer, in
// batches of up to 16 gathered across requests (for at most batchWait): checked inline, the
// agent's one-record requests (its lead is one aggregate) had this endpoint hash one at a
// time, at 0.9 CPU s per 512 MiB against 0.2, on the cores the agent was measured on. The
// checks go to a fixed set of workers, each owning one of its hashers (md5-simd v1.1.2
// never forgets a closed hasher, so they are made once, not per request).
type md5Checker struct {
	jobs    chan *md5Check
	queue   chan *pendingChecks
	srv     md5simd.Server
	wg      sync.WaitGroup // the workers
	batcher sync.WaitGroup // batchLoop
	pending sync.WaitGroup // requests submitted and not yet tallied
}

// pendingChecks is one request's large aggregates, and what to do once they are checked.
type pendingChecks struct {
	checks []md5Check
	tally  func([]md5Check)
}

// md5SmallAggregate is the size under which an aggregate is hashed in the handler: a hand-off
// to a worker costs more than hashing a few KiB.
const md5SmallAggregate = 16 << 10

// batchWait is the longest the first aggregate of a batch waits for peers. The answer has
// gone already; only the endpoint's memory holds them meanwhile.
const batchWait = 20 * time.Millisecond

func newMD5Checker() *md5Checker {
	c := &md5Checker{jobs: make(chan *md5Check), queue: make(chan *pendingChecks, 64), srv: md5simd.NewServer()}
	for range md5simd.Lanes {
		h := c.srv.NewHash()
		c.wg.Go(func() {
			defer h.Close()
			var sum [md5.Size]byte
			for j := range c.jobs {
				h.Reset()
				_, _ = h.Write(j.pb)
				j.ok = bytes.Equal(h.Sum(sum[:0]), j.want)
				j.done.Done()
			}
		})
	}
	c.batcher.Go(c.batchLoop)
	return c
}

// submit queues a request's large aggregates for checking; tally gets them, each ok set,
// once they are checked.
func (c *md5Checker) submit(checks []md5Check, tally func([]md5Check)) {
	c.pending.Add(1)
	c.queue <- &pendingChecks{checks: checks, tally: tally}
}

// flush waits until every check submitted so far is tallied.
func (c *md5Checker) flush() { c.pending.Wait() }

func (c *md5Checker) batchLoop() {
	var batch []*pendingChecks
	var requests [][]md5Check
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for first := range c.queue {
		batch = append(batch[:0], first)
		n := len(first.checks)
		timer.Reset(batchWait)
	gather:
		for n < md5simd.Lanes {
			select {
			case p, ok := <-c.queue:
				if !ok {
					break gather
				}
				batch = append(batch, p)
				n += len(p.checks)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		requests = requests[:0]
		for _, p := range batch {
			requests = append(requests, p.checks)
		}
		c.check(requests...)
		for _, p := range batch {
			p.tally(p.checks)
			c.pending.Done()
		}
	}
}

// check sets the ok of every check of every request and returns: small aggregates hashed
// here, the large ones of all the requests side by side by the workers.
func (c *md5Checker) check(requests ...[]md5Check) {
	var done sync.WaitGroup
	for _, checks := range requests {
		for i := range checks {
			j := &checks[i]
			if len(j.pb) < md5SmallAggregate {
				sum := md5.Sum(j.pb)
				j.ok = bytes.Equal(sum[:], j.want)
				continue
			}
			j.done = &done
			done.Add(1)
			c.jobs <- j
		}
	}
	done.Wait()
}

// close checks what is queued, then stops the workers. No submit may follow.
func (c *md5Checker) close() {
	close(c.queue)
	c.batcher.Wait()
	close(c.jobs)
	c.wg.Wait()
	c.srv.Close()
}

type entry struct {
	Data            []byte
	PartitionKey    string
	ExplicitHashKey *string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "Kinesis_20131202.")
	ct := r.Header.Get("Content-Type")
	isCBOR := strings.HasPrefix(ct, "application/x-amz-cbor")
	if !authShapeOK(r) {
		h.st.AuthErrors.Add(1)
		writeError(w, isCBOR, http.StatusBadRequest, "IncompleteSignatureException", "Authorization header is not SigV4-shaped")
		return
	}
	bp, _ := h.bufs.Get().(*bytes.Buffer)
	if bp == nil {
		bp = new(bytes.Buffer)
	}
	release := func() { bp.Reset(); h.bufs.Put(bp) }
	handedOver := false // the body waits for its MD5 checks, which release it
	defer func() {
		if !handedOver {
			release()
		}
	}()
	if r.ContentLength > 0 {
		bp.Grow(int(r.ContentLength))
	}
	if _, err := bp.ReadFrom(io.LimitReader(r.Body, 16<<20)); err != nil {
		return
	}
	body := bp.Bytes()
	switch op {
	case "PutRecords":
		h.takeTurn()
		handedOver = h.putRecords(w, body, isCBOR, release)
	case "DescribeStreamSummary":
		writeJSON(w, map[string]any{"StreamDescriptionSummary": map[string]any{"StreamName": "bench", "StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/bench",
			"StreamStatus": "ACTIVE", "OpenShardCount": 1, "RetentionPeriodHours": 24, "StreamCreationTimestamp": 0, "EnhancedMonitoring": []any{}}})
	case "ListShards":
		writeJSON(w, map[string]any{"Shards": []any{map[string]any{"ShardId": "shardId-000000000000",
			"HashKeyRange":        map[string]string{"StartingHashKey": "0", "EndingHashKey": "340282366920938463463374607431768211455"},
			"SequenceNumberRange": map[string]string{"StartingSequenceNumber": "0"}}}})
	default:
		h.st.BadRequests.Add(1)
		writeError(w, isCBOR, http.StatusBadRequest, "UnknownOperationException", op)
	}
}

// takeTurn waits for the request's turn and holds it for pace (see handler.pace).
func (h *handler) takeTurn() {
	if h.pace <= 0 {
		return
	}
	h.paceMu.Lock()
	defer h.paceMu.Unlock()
	time.Sleep(h.pace)
}

// putRecords answers a PutRecords request. Large aggregates are checked after the answer
// (md5Checker); it returns true when they were submitted, and release then frees body once
// they are.
func (h *handler) putRecords(w http.ResponseWriter, body []byte, isCBOR bool, release func()) (handedOver bool) {
	entries, err := decodePutRecords(body, isCBOR)
	if err != nil || len(entries) == 0 || len(entries) > 500 {
		h.st.BadRequests.Add(1)
		writeError(w, isCBOR, http.StatusBadRequest, "SerializationException", fmt.Sprint(err))
		return false
	}
	h.st.Requests.Add(1)
	h.st.BodyBytes.Add(int64(len(body)))
	h.st.Records.Add(int64(len(entries)))
	var data int64
	var small, large []md5Check
	for _, e := range entries {
		data += int64(len(e.Data))
		if !bytes.HasPrefix(e.Data, kplMagic) {
			h.st.UserRecords.Add(1)
			continue
		}
		h.st.Aggregates.Add(1)
		if len(e.Data) < len(kplMagic)+md5.Size {
			h.st.MD5Errors.Add(1)
			continue
		}
		c := md5Check{pb: e.Data[len(kplMagic) : len(e.Data)-md5.Size], want: e.Data[len(e.Data)-md5.Size:]}
		if len(c.pb) < md5SmallAggregate {
			small = append(small, c)
		} else {
			large = append(large, c)
		}
	}
	h.md5.check(small) // hashed here: a hand-off costs more than a few KiB
	h.tally(small)
	if len(large) > 0 {
		h.md5.submit(large, func(checks []md5Check) {
			h.tally(checks)
			release()
		})
		handedOver = true
	}
	h.st.DataBytes.Add(data)
	if isCBOR {
		recs := make(cbor.List, len(entries))
		for i := range recs {
			recs[i] = cbor.Map{"ShardId": cbor.String("shardId-000000000000"), "SequenceNumber": cbor.String("1")}
		}
		writeBody(w, "application/x-amz-cbor-1.1", http.StatusOK, cbor.Encode(cbor.Map{"FailedRecordCount": cbor.Uint(0), "Records": recs}))
		return handedOver
	}
	var b bytes.Buffer
	b.WriteString(`{"FailedRecordCount":0,"Records":[`)
	for i := range entries {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"ShardId":"shardId-000000000000","SequenceNumber":"1"}`)
	}
	b.WriteString(`]}`)
	writeBody(w, "application/x-amz-json-1.1", http.StatusOK, b.Bytes())
	return handedOver
}

// tally counts checked aggregates: an MD5 error, or the user records of a good one.
func (h *handler) tally(checks []md5Check) {
	for _, c := range checks {
		if !c.ok {
			h.st.MD5Errors.Add(1)
			continue
		}
		n, err := countUserRecords(c.pb)
		if err != nil {
			h.st.MD5Errors.Add(1)
		}
		h.st.UserRecords.Add(int64(n))
	}
}

func decodePutRecords(body []byte, isCBOR bool) ([]entry, error) {
	if !isCBOR {
		return scanJSONRecords(body)
	}
	v, err := cbor.Decode(body)
	if err != nil {
		return nil, err
	}
	m, _ := v.(cbor.Map)
	list, ok := m["Records"].(cbor.List)
	if !ok {
		return nil, errors.New("no Records list")
	}
	out := make([]entry, len(list))
	for i, item := range list {
		em, _ := item.(cbor.Map)
		d, ok1 := em["Data"].(cbor.Slice)
		k, ok2 := em["PartitionKey"].(cbor.String)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("record %d: no Data or PartitionKey", i)
		}
		out[i] = entry{Data: d, PartitionKey: string(k)}
	}
	return out, nil
}

// countUserRecords counts the Record fields (number 3) of a KPL AggregatedRecord.
func countUserRecords(pb []byte) (int, error) {
	n := 0
	for len(pb) > 0 {
		tag, l := uvarint(pb)
		if l <= 0 || tag&7 != 2 {
			return n, errors.New("not an aggregate")
		}
		pb = pb[l:]
		size, l := uvarint(pb)
		if l <= 0 || uint64(len(pb)-l) < size {
			return n, errors.New("truncated aggregate")
		}
		pb = pb[l+int(size):]
		if tag>>3 == 3 {
			n++
		}
	}
	return n, nil
}

func uvarint(b []byte) (uint64, int) {
	var x uint64
	for i, c := range b {
		if i == 10 {
			return 0, -1
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return x, i + 1
		}
	}
	return 0, 0
}

// authShapeOK checks what kinesalite checks: a SigV4 Authorization header naming its
// credential, signed headers and signature, and a date.
func authShapeOK(r *http.Request) bool {
	a := r.Header.Get("Authorization")
	return strings.HasPrefix(a, "AWS4-HMAC-SHA256 Credential=") && strings.Contains(a, "/kinesis/aws4_request") &&
		strings.Contains(a, "SignedHeaders=") && strings.Contains(a, "Signature=") && r.Header.Get("X-Amz-Date") != ""
}

func writeError(w http.ResponseWriter, isCBOR bool, status int, typ, msg string) {
	w.Header().Set("X-Amzn-ErrorType", typ)
	if isCBOR {
		writeBody(w, "application/x-amz-cbor-1.1", status, cbor.Encode(cbor.Map{"__type": cbor.String(typ), "message": cbor.String(msg)}))
		return
	}
	b, _ := json.Marshal(map[string]string{"__type": typ, "message": msg})
	writeBody(w, "application/x-amz-json-1.1", status, b)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	writeBody(w, "application/x-amz-json-1.1", http.StatusOK, b)
}

func writeBody(w http.ResponseWriter, ct string, status int, b []byte) {
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// scanJSONRecords finds each record's "Data" in a JSON PutRecords body and decodes it from
// base64, without a general JSON decoder: encoding/json would make this endpoint, not the
// agent, the bottleneck of the JSON rows. It relies on what JSON guarantees (a base64 string
// holds no quote or escape), not on the order of members; partition keys are not read.
func scanJSONRecords(body []byte) ([]entry, error) {
	var out []entry
	key := []byte(`"Data":"`)
	for {
		i := bytes.Index(body, key)
		if i < 0 {
			break
		}
		body = body[i+len(key):]
		end := bytes.IndexByte(body, '"')
		if end < 0 {
			return nil, errors.New("unterminated Data")
		}
		d := make([]byte, base64.StdEncoding.DecodedLen(end))
		n, err := base64.StdEncoding.Decode(d, body[:end])
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", len(out), err)
		}
		out = append(out, entry{Data: d[:n]})
		body = body[end:]
	}
	return out, nil
}
