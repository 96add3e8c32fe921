package supervisor

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// cloudWatchSums is a loopback PutMetricData endpoint (Smithy RPC v2 CBOR, gzip) that adds up
// the Sum of each metric by name and dimensions.
type cloudWatchSums struct {
	mu   sync.Mutex
	sums map[string]float64
	ns   map[string]bool
}

func (c *cloudWatchSums) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, _ := io.ReadAll(body)
	v, err := cbor.Decode(b)
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	m, ok := v.(cbor.Map)
	if err != nil || !ok || !strings.HasSuffix(r.URL.Path, "/operation/PutMetricData") {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ns, _ := m["Namespace"].(cbor.String)
	c.ns[string(ns)] = true
	data, _ := m["MetricData"].(cbor.List)
	for _, d := range data {
		dm, _ := d.(cbor.Map)
		name, _ := dm["MetricName"].(cbor.String)
		key := string(name)
		dims, _ := dm["Dimensions"].(cbor.List)
		for _, x := range dims {
			xm, _ := x.(cbor.Map)
			n, _ := xm["Name"].(cbor.String)
			val, _ := xm["Value"].(cbor.String)
			key += fmt.Sprintf(",%s=%s", n, val)
		}
		sv, _ := dm["StatisticValues"].(cbor.Map)
		sum, _ := cbor.AsFloat64(sv["Sum"])
		c.sums[key] += sum
	}
	_, _ = w.Write(cbor.Encode(cbor.Map{}))
}

func (c *cloudWatchSums) get(key string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sums[key]
}

// A run with metrics.cloudwatch publishes, at its end at the latest, the Kinesis Agent's
// sender metrics for what really reached the stream (kinesalite), under the configured
// namespace and with the Instance dimension.
func TestRunPublishesTheKinesisAgentsCloudWatchMetrics(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	for _, kv := range kinesalitetest.Env(endpoint) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	kinesalitetest.CreateStream(t, endpoint, "app-logs", 1)
	cws := &cloudWatchSums{sums: map[string]float64{}, ns: map[string]bool{}}
	srv := httptest.NewServer(cws)
	defer srv.Close()

	logs := t.TempDir()
	var lines strings.Builder
	for i := range 50 {
		fmt.Fprintf(&lines, "line %d\n", i)
	}
	if err := os.WriteFile(filepath.Join(logs, "a.log"), []byte(lines.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("kinship.yaml", []byte(fmt.Sprintf(`state_dir: %s
aws: {region: us-east-1, endpoint: %s}
metrics:
  cloudwatch: {enabled: true, namespace: AWSKinesisAgent, endpoint: %s, tag_instance: true, interval: 1h}
flows:
  - name: app
    paths: [%q]
    start_at: beginning
    kinesis: {stream: app-logs, aggregate: false}
`, t.TempDir(), endpoint, srv.URL, filepath.Join(logs, "*.log"))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg := prometheus.NewRegistry()
	s := New(ctx, cfg, metrics.New(reg), slog.New(slog.DiscardHandler), true)
	if err := s.StartAll(); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(nil, func() {}); err != nil {
		t.Fatal(err)
	}

	host, _ := os.Hostname() // IMDS is off: the host name stands for the instance id
	dims := ",Destination=KinesisStream:app-logs,Instance=" + host
	sent := len(kinesalitetest.ReadAll(t, endpoint, "app-logs"))
	if sent != 50 {
		t.Fatalf("%d records in the stream, want 50", sent)
	}
	if got := cws.get("RecordsSent" + dims); got != 50 {
		t.Errorf("RecordsSent %g, want 50; published %v", got, cws.sums)
	}
	if got := cws.get("RecordSendAttempts" + dims); got < 50 {
		t.Errorf("RecordSendAttempts %g, want at least 50", got)
	}
	if got, want := cws.get("BytesSent"+dims), float64(lines.Len()-50); got != want {
		t.Errorf("BytesSent %g, want %g (the lines without their newlines)", got, want)
	}
	if !cws.ns["AWSKinesisAgent"] {
		t.Errorf("namespaces %v", cws.ns)
	}
	if _, ok := cws.sums["ConsecutiveProcessingErrors,Destination=app-logs,Instance="+host]; !ok {
		t.Errorf("no ConsecutiveProcessingErrors; published %v", cws.sums)
	}
}
