package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/internal/testenv/cloudwatchtest"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

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
	cws := cloudwatchtest.Start(t)

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
`, t.TempDir(), endpoint, cws.URL, filepath.Join(logs, "*.log"))))
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
	dims := "{Destination=KinesisStream:app-logs,Instance=" + host + "}"
	sent := len(kinesalitetest.ReadAll(t, endpoint, "app-logs"))
	if sent != 50 {
		t.Fatalf("%d records in the stream, want 50", sent)
	}
	sums := cws.Sums()
	if got := sums["RecordsSent"+dims]; got != 50 {
		t.Errorf("RecordsSent %g, want 50; published %v", got, sums)
	}
	if got := sums["RecordSendAttempts"+dims]; got < 50 {
		t.Errorf("RecordSendAttempts %g, want at least 50", got)
	}
	if got, want := sums["BytesSent"+dims], float64(lines.Len()-50); got != want {
		t.Errorf("BytesSent %g, want %g (the lines without their newlines)", got, want)
	}
	for _, r := range cws.Requests() {
		if r.Namespace != "AWSKinesisAgent" {
			t.Errorf("namespace %q", r.Namespace)
		}
	}
	if _, ok := sums["ConsecutiveProcessingErrors{Destination=app-logs,Instance="+host+"}"]; !ok {
		t.Errorf("no ConsecutiveProcessingErrors; published %v", sums)
	}
}
