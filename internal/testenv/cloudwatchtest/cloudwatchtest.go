// Package cloudwatchtest is a loopback CloudWatch PutMetricData endpoint for tests. The AWS
// SDK's CloudWatch client (service/cloudwatch v1.75) speaks Smithy RPC v2 CBOR: POST
// /service/GraniteServiceVersion20100801/operation/PutMetricData with a CBOR map, gzip
// compressed (PutMetricData's request compression). The server decodes that with smithy-go's
// own CBOR decoder and keeps every datum.
package cloudwatchtest

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/smithy-go/encoding/cbor"
)

// Datum is one metric datum as received.
type Datum struct {
	Name, Unit string
	Dims       string // "Name=Value,Name=Value" in the order sent
	N, Sum     float64
	Min, Max   float64
}

func (d Datum) String() string {
	return fmt.Sprintf("%s{%s} %s n=%g sum=%g min=%g max=%g", d.Name, d.Dims, d.Unit, d.N, d.Sum, d.Min, d.Max)
}

// Request is one PutMetricData request.
type Request struct {
	Namespace string
	Data      []Datum
}

// Server is the endpoint; URL is its base URL.
type Server struct {
	URL string

	mu       sync.Mutex
	requests []Request
	fail     int
}

// Start starts a server, closed when the test ends. Requests it cannot decode fail the test.
func Start(t testing.TB) *Server {
	s := &Server{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		w.Header().Set("Content-Type", "application/cbor")
		req, err := decode(r)
		if err != nil {
			t.Errorf("cloudwatchtest: %s %s: %v", r.Method, r.URL.Path, err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		failing := s.fail > 0
		if failing {
			s.fail--
		} else {
			s.requests = append(s.requests, req)
		}
		s.mu.Unlock()
		if failing {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write(cbor.Encode(cbor.Map{"__type": cbor.String("InvalidParameterValue"), "message": cbor.String("failing as the test asked")}))
			return
		}
		_, _ = w.Write(cbor.Encode(cbor.Map{}))
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Fail answers the next n requests with an error (their data are not kept).
func (s *Server) Fail(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = n
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Sums adds up the Sum of every datum received, by "Name{Dims}".
func (s *Server) Sums() map[string]float64 {
	out := map[string]float64{}
	for _, r := range s.Requests() {
		for _, d := range r.Data {
			out[d.Name+"{"+d.Dims+"}"] += d.Sum
		}
	}
	return out
}

func decode(r *http.Request) (Request, error) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/operation/PutMetricData") {
		return Request{}, fmt.Errorf("not a PutMetricData request")
	}
	if p := r.Header.Get("Smithy-Protocol"); p != "rpc-v2-cbor" {
		return Request{}, fmt.Errorf("Smithy-Protocol %q", p)
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return Request{}, err
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return Request{}, err
	}
	v, err := cbor.Decode(b)
	if err != nil {
		return Request{}, err
	}
	m, ok := v.(cbor.Map)
	if !ok {
		return Request{}, fmt.Errorf("body is %T, want a map", v)
	}
	var req Request
	ns, _ := m["Namespace"].(cbor.String)
	req.Namespace = string(ns)
	list, _ := m["MetricData"].(cbor.List)
	for _, item := range list {
		dm, _ := item.(cbor.Map)
		var d Datum
		name, _ := dm["MetricName"].(cbor.String)
		unit, _ := dm["Unit"].(cbor.String)
		d.Name, d.Unit = string(name), string(unit)
		dims, _ := dm["Dimensions"].(cbor.List)
		var parts []string
		for _, x := range dims {
			xm, _ := x.(cbor.Map)
			n, _ := xm["Name"].(cbor.String)
			val, _ := xm["Value"].(cbor.String)
			parts = append(parts, string(n)+"="+string(val))
		}
		d.Dims = strings.Join(parts, ",")
		sv, _ := dm["StatisticValues"].(cbor.Map)
		for key, dst := range map[string]*float64{"SampleCount": &d.N, "Sum": &d.Sum, "Minimum": &d.Min, "Maximum": &d.Max} {
			x, ok := sv[key]
			if !ok {
				return Request{}, fmt.Errorf("%s: no StatisticValues.%s", d.Name, key)
			}
			if *dst, err = cbor.AsFloat64(x); err != nil {
				return Request{}, fmt.Errorf("%s: %s: %w", d.Name, key, err)
			}
		}
		if _, err := cbor.AsTime(dm["Timestamp"]); err != nil {
			return Request{}, fmt.Errorf("%s: timestamp: %w", d.Name, err)
		}
		req.Data = append(req.Data, d)
	}
	return req, nil
}
