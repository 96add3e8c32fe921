package flow

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/internal/shardmap"
	"github.com/kinship-agent/kinship/internal/testenv/faultproxy"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
	"github.com/kinship-agent/kinship/shipper"
)

// A keyed flow with the default max_in_flight (4), behind a proxy that throttles single
// records, fails others with InternalFailure and throttles or fails whole requests: every
// line arrives once, and the lines of each key sit on one shard in the order written.
// (Before the shipper kept per-shard order, a record that failed next to a later record of
// its shard that succeeded, or a request overtaking another, put lines out of order.)
func TestKeyedFlowKeepsOrderUnderFaults(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	endpoint := kinesalitetest.Start(t)
	const stream = "ordered"
	kinesalitetest.CreateStream(t, endpoint, stream, 4)
	proxy := faultproxy.Start(t, endpoint, func(n, _ int) faultproxy.Fault {
		if n >= 400 {
			return faultproxy.Fault{}
		}
		switch n % 10 {
		case 1, 4, 6, 8:
			// Per-record throttling: some records of a request fail, the others are taken.
			return faultproxy.Fault{Kind: faultproxy.FailEntries, Fail: func(i, _ int) bool { return (i+n)%3 == 0 }}
		case 2:
			return faultproxy.Fault{Kind: faultproxy.FailEntries, Code: "InternalFailure", Fail: func(i, _ int) bool { return i%2 == 1 }}
		case 5:
			return faultproxy.Fault{Kind: faultproxy.Throttle}
		case 9:
			return faultproxy.Fault{Kind: faultproxy.ServerError}
		}
		return faultproxy.Fault{}
	})

	logDir := t.TempDir()
	const n = 6000
	writeKeyedLines(t, filepath.Join(logDir, "app.log"), 0, n)
	cfg, err := config.Parse("ordered.yaml", fmt.Appendf(nil, `
flows:
  - name: ordered
    paths: [%q]
    kinesis:
      stream: %s
      partition_key_field: user.id
    batch: {max_age: 50ms, max_bytes: 2KiB}
`, filepath.Join(logDir, "*.log"), stream))
	if err != nil {
		t.Fatal(err)
	}
	if got := maxInFlight(cfg.Flows[0]); got != 4 {
		t.Fatalf("default max_in_flight is %d, the test wants 4", got)
	}
	client := kinesalitetest.Client(proxy.URL)
	m := shardmap.New(client, stream, shardmap.Options{})
	api := shipper.NewShardAware(client, m, shipper.Limits{}, nil)
	mf := metrics.New(prometheus.NewRegistry()).Flow("ordered")
	f, err := New(cfg.Flows[0], Deps{Dir: t.TempDir(), Destination: shipper.NewKinesis(api, stream, shipper.Limits{}),
		Shards: m, Metrics: mf, CheckpointInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := f.Run(ctx, true); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if proxy.Failed() == 0 {
		t.Fatalf("the schedule failed nothing: %+v", proxy.Events())
	}

	lines, dropped := readShards(t, endpoint, stream)
	if dropped > 0 {
		t.Errorf("%d aggregates hold user records outside the shard they were read from", dropped)
	}
	checkKeyedDelivery(t, lines, n, true)
	shardOf := map[string]string{}
	for _, l := range lines {
		if l.seq%97 == 0 {
			continue
		}
		if sh, ok := shardOf[l.key]; ok && sh != l.shard {
			t.Errorf("key %s on shards %s and %s", l.key, sh, l.shard)
		}
		shardOf[l.key] = l.shard
	}
	if len(shardOf) != 50 {
		t.Errorf("%d keys read back, want 50", len(shardOf))
	}
	t.Logf("%d PutRecords entries failed by the proxy; %v retries; %v records", proxy.Failed(),
		counterValue(t, mf.Retries), counterValue(t, mf.RecordsSent))
}
