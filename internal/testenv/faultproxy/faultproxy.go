// Package faultproxy is a reverse proxy on 127.0.0.1, put in front of a real Kinesis API
// (kinesalite) in tests, that injects faults on the HTTP path so that the AWS SDK's real
// code runs: throttling errors, HTTP 500s, slow answers, connection resets and partial
// PutRecords failures.
//
// Faults cause duplicates only where the schedule asks for them: a throttled, failed, slow or
// reset request is not forwarded, and the entries a partial failure marks as failed are
// stripped from the request before it is forwarded, then spliced back into the response with
// an ErrorCode. The one exception is ResetAfterForward, which lets the request reach the
// stream and then loses the answer, so the client must send it again: Event.Duplicates counts
// the copies it forced. So a test can demand that every record arrives exactly once plus the
// forced duplicates, and count the expected retries from Events.
//
// PutRecords is understood in both of Kinesis's protocols, JSON and CBOR (by Content-Type,
// wire.go); injected answers are in the request's protocol.
package faultproxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Kind is what the proxy does with one PutRecords request.
type Kind int

const (
	Forward     Kind = iota // pass it through unchanged
	Throttle                // HTTP 400 Fault.Code [ProvisionedThroughputExceededException], not forwarded
	ServerError             // HTTP 500 InternalFailure, not forwarded
	Reset                   // the connection is reset without an answer, not forwarded
	FailEntries             // entries chosen by Fault.Fail are withheld and answered with Fault.Code
	// Slow holds the request unanswered until the client gives up (its timeout) or
	// Fault.Delay passes, then resets the connection; it is never forwarded.
	Slow
	// ResetAfterForward forwards the request, waits for the stream's answer, and resets the
	// connection instead of passing the answer on: the entries the stream accepted are in it,
	// and the client, which never learns so, sends them again (Event.Duplicates).
	ResetAfterForward
)

func (k Kind) String() string {
	switch k {
	case Throttle:
		return "throttle"
	case ServerError:
		return "server-error"
	case Reset:
		return "reset"
	case FailEntries:
		return "fail-entries"
	case Slow:
		return "slow"
	case ResetAfterForward:
		return "reset-after-forward"
	default:
		return "forward"
	}
}

// Fault is the proxy's answer to one PutRecords request.
type Fault struct {
	Kind Kind
	Fail func(i, n int) bool // FailEntries: whether entry i of n fails
	Code string              // FailEntries: the entries' ErrorCode; Throttle: the error's type [ProvisionedThroughputExceededException]
	// Slow: the longest the request is held [1 minute]; it should exceed the client's
	// timeout, or the client sees a reset instead of a timeout.
	Delay time.Duration
}

// Schedule picks the fault for the n-th PutRecords request (0-based) holding records entries.
// It is called from one request at a time.
type Schedule func(n, records int) Fault

// Event is what the proxy did with one PutRecords request.
type Event struct {
	N       int
	Kind    Kind
	Records int // entries in the request
	Failed  int // entries reported failed (FailEntries), or Records for whole-request faults
	// Duplicates: entries that reached the stream although the client was told nothing
	// (ResetAfterForward), so that it sends them again.
	Duplicates int
	// AccessKeyID is the key that signed the request (from its Authorization header), and
	// SessionToken its X-Amz-Security-Token: tests check which credentials a client used.
	AccessKeyID  string
	SessionToken string
}

// Proxy is a running fault-injecting proxy. Its URL is the endpoint to give the SDK.
type Proxy struct {
	URL string

	upstream string
	schedule Schedule
	client   *http.Client
	srv      *httptest.Server

	mu     sync.Mutex // serialises Schedule and guards events
	events []Event

	cut atomic.Bool // every request is reset unanswered, as if the endpoint were gone
}

// Cut makes the endpoint unreachable (on) or reachable again (off): while cut, every request,
// not only PutRecords, is answered with a connection reset, nothing is forwarded, and the
// schedule is not consulted (the outage is not an Event). Safe to call from any goroutine.
func (p *Proxy) Cut(on bool) { p.cut.Store(on) }

// Start runs a proxy for upstream (a base URL such as kinesalitetest.Start returns) on
// 127.0.0.1 until the test ends. Only PutRecords requests go through schedule; every other
// call is forwarded unchanged. A nil schedule forwards everything.
func Start(t testing.TB, upstream string, schedule Schedule) *Proxy {
	t.Helper()
	if schedule == nil {
		schedule = func(int, int) Fault { return Fault{} }
	}
	p := &Proxy{
		upstream: strings.TrimRight(upstream, "/"),
		schedule: schedule,
		client:   &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}},
	}
	p.srv = httptest.NewServer(p)
	p.URL = p.srv.URL
	t.Cleanup(func() {
		p.srv.Close()
		p.client.CloseIdleConnections()
	})
	return p
}

// Events returns what the proxy did with each PutRecords request so far, in arrival order.
func (p *Proxy) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event(nil), p.events...)
}

// Failed returns how many record sends the proxy failed so far: entries of whole requests it
// rejected plus entries it marked failed. With SDK retries off, it is the shipper's
// expected Retries count.
func (p *Proxy) Failed() int {
	n := 0
	for _, e := range p.Events() {
		n += e.Failed
	}
	return n
}

// Duplicates returns how many entries the proxy let into the stream while telling the client
// they failed (ResetAfterForward): the duplicates the schedule forced.
func (p *Proxy) Duplicates() int {
	n := 0
	for _, e := range p.Events() {
		n += e.Duplicates
	}
	return n
}

// accessKeyID returns the key id in a SigV4 Authorization header
// ("AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, ...").
func accessKeyID(auth string) string {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(cred, "/")
	return id
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.cut.Load() {
		reset(w)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "faultproxy: read request: "+err.Error(), http.StatusBadGateway)
		return
	}
	if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutRecords") {
		p.forward(w, r, body)
		return
	}
	wire := wireFor(r.Header.Get("Content-Type"))
	req, err := wire.parseRequest(body)
	if err != nil {
		http.Error(w, "faultproxy: PutRecords body: "+err.Error(), http.StatusBadRequest)
		return
	}
	entries := req.entries

	p.mu.Lock()
	n := len(p.events)
	f := p.schedule(n, len(entries))
	ev := Event{N: n, Kind: f.Kind, Records: len(entries),
		AccessKeyID: accessKeyID(r.Header.Get("Authorization")), SessionToken: r.Header.Get("X-Amz-Security-Token")}
	var failed []bool
	if f.Kind == FailEntries {
		failed = make([]bool, len(entries))
		for i := range entries {
			if f.Fail != nil && f.Fail(i, len(entries)) {
				failed[i] = true
				ev.Failed++
			}
		}
	} else if f.Kind != Forward {
		ev.Failed = len(entries)
	}
	p.events = append(p.events, ev)
	p.mu.Unlock()

	switch f.Kind {
	case Throttle:
		code := f.Code
		if code == "" {
			code = "ProvisionedThroughputExceededException"
		}
		wire.writeError(w, http.StatusBadRequest, code,
			"Rate exceeded for shard shardId-000000000000 in stream under account 000000000000.")
	case ServerError:
		wire.writeError(w, http.StatusInternalServerError, "InternalFailure", "faultproxy: injected failure")
	case Reset:
		reset(w)
	case Slow:
		d := f.Delay
		if d <= 0 {
			d = time.Minute
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done(): // the client gave up
		}
		reset(w)
	case ResetAfterForward:
		// The event is complete before the client can notice the reset and send again.
		dup := p.forwardOnly(r, body, wire)
		p.mu.Lock()
		p.events[n].Duplicates = dup
		p.mu.Unlock()
		reset(w)
	case FailEntries:
		code := f.Code
		if code == "" {
			code = "ProvisionedThroughputExceededException"
		}
		p.failEntries(w, r, wire, req, failed, code)
	default:
		p.forward(w, r, body)
	}
}

// reset closes the client's connection with a TCP RST and no answer.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("faultproxy: response writer cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// failEntries forwards the entries that are not marked failed and answers as if the service
// had rejected the marked ones.
func (p *Proxy) failEntries(w http.ResponseWriter, r *http.Request, wire wire, req putRecordsRequest, failed []bool, code string) {
	var keep []any
	for i, e := range req.entries {
		if !failed[i] {
			keep = append(keep, e)
		}
	}
	var upstream putRecordsResult
	if len(keep) > 0 {
		resp, err := p.send(r, req.rebuild(keep))
		if err != nil {
			http.Error(w, "faultproxy: upstream: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		rb, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, "faultproxy: upstream answer: "+err.Error(), http.StatusBadGateway)
			return
		}
		if resp.StatusCode != http.StatusOK {
			// The whole request failed upstream: pass that on as it is.
			copyHeader(w.Header(), resp.Header)
			w.WriteHeader(resp.StatusCode)
			_, _ = w.Write(rb)
			return
		}
		upstream, err = wire.parseResult(rb)
		if err != nil || len(upstream.records) != len(keep) {
			http.Error(w, fmt.Sprintf("faultproxy: upstream answer has %d entries for %d (%v)", len(upstream.records), len(keep), err), http.StatusBadGateway)
			return
		}
	}
	out := putRecordsResult{failed: upstream.failed, encryption: upstream.encryption, records: make([]any, 0, len(req.entries))}
	j := 0
	for i := range req.entries {
		if failed[i] {
			out.records = append(out.records, wire.failure(code, "faultproxy: injected "+code))
			out.failed++
			continue
		}
		out.records = append(out.records, upstream.records[j])
		j++
	}
	w.Header().Set("Content-Type", wire.contentType())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(wire.encodeResult(out))
}

// forwardOnly sends the request upstream and reads the answer without passing it on; it
// returns how many entries the stream accepted.
func (p *Proxy) forwardOnly(r *http.Request, body []byte, wire wire) int {
	resp, err := p.send(r, body)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0
	}
	out, err := wire.parseResult(rb)
	if err != nil {
		return 0
	}
	return len(out.records) - out.failed
}

func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	resp, err := p.send(r, body)
	if err != nil {
		http.Error(w, "faultproxy: upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (p *Proxy) send(r *http.Request, body []byte) (*http.Response, error) {
	// Once the proxy has the whole request it is sent upstream even if the client goes away
	// (a test killing the agent with SIGKILL): a real service processes a request it received,
	// and kinesalite throws an uncaught exception, and exits, on a request aborted mid-body.
	req, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, p.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	copyHeader(req.Header, r.Header)
	return p.client.Do(req)
}

// copyHeader copies end-to-end headers; lengths and checksums no longer match a rewritten body.
func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Connection", "Keep-Alive", "Transfer-Encoding", "X-Amz-Crc32":
			continue
		}
		dst[k] = append([]string(nil), vs...)
	}
}
