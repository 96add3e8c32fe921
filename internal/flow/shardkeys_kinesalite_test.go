package flow

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/internal/shardmap"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
	"github.com/kinship-agent/kinship/shipper"
)

// keyedFlow builds a flow that takes partition keys from the JSON field user.id, shipping to
// stream on endpoint through the shard-aware path, as cmd/agent wires it.
func keyedFlow(t *testing.T, endpoint, stream, logDir string) (*Flow, *metrics.Flow, *shipper.ShardAware) {
	t.Helper()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfg, err := config.Parse("keys.yaml", fmt.Appendf(nil, `
flows:
  - name: keys
    paths: [%q]
    kinesis:
      stream: %s
      partition_key_field: user.id
      max_in_flight: 1
    batch: {max_age: 100ms, max_bytes: 16KiB}
`, filepath.Join(logDir, "*.log"), stream))
	if err != nil {
		t.Fatal(err)
	}
	client := kinesalitetest.Client(endpoint)
	m := shardmap.New(client, stream, shardmap.Options{})
	api := shipper.NewShardAware(client, m, shipper.Limits{}, nil)
	mf := metrics.New(prometheus.NewRegistry()).Flow("keys")
	f, err := New(cfg.Flows[0], Deps{Dir: t.TempDir(), Destination: shipper.NewKinesis(api, stream, shipper.Limits{}),
		Shards: m, Metrics: mf, CheckpointInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return f, mf, api
}

// writeKeyedLines appends lines seq from..to-1 over 50 keys; every 97th line has no key.
func writeKeyedLines(t *testing.T, path string, from, to int) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var buf []byte
	for i := from; i < to; i++ {
		if i%97 == 0 {
			buf = fmt.Appendf(buf, "not json, seq %d\n", i)
			continue
		}
		buf = fmt.Appendf(buf, `{"seq":%d,"msg":"hello %d","user":{"id":"user-%02d"}}`+"\n", i, i, i%50)
	}
	if _, err := fh.Write(buf); err != nil {
		t.Fatal(err)
	}
}

type readLine struct {
	seq   int
	key   string
	shard string
}

// (Stream names must not be "keys": kinesalite keeps its streams in a plain object.)
//
// readShards reads every shard of stream, parents before children (ListShards order), and
// de-aggregates like the KCL: an aggregate with a user record hashing outside the shard it
// was read from is dropped whole (counted in dropped).
func readShards(t *testing.T, endpoint, stream string) (lines []readLine, dropped int) {
	t.Helper()
	for _, sr := range kinesalitetest.ReadShards(t, endpoint, stream) {
		sh := sr.Shard
		start, _ := shardmap.ParseHash(aws.ToString(sh.HashKeyRange.StartingHashKey))
		end, _ := shardmap.ParseHash(aws.ToString(sh.HashKeyRange.EndingHashKey))
		rng := shardmap.Shard{Start: start, End: end}
		for _, r := range sr.Records {
			urs, _, _ := aggregator.Deaggregate(r.Data, aws.ToString(r.PartitionKey))
			ok := true
			for _, u := range urs {
				h := shardmap.KeyHash(u.PartitionKey)
				if u.ExplicitHashKey != "" {
					h, _ = shardmap.ParseHash(u.ExplicitHashKey)
				}
				ok = ok && rng.Contains(h)
			}
			if !ok {
				dropped++
				continue
			}
			for _, u := range urs {
				l := readLine{key: u.PartitionKey, shard: aws.ToString(sh.ShardId), seq: -1}
				var v struct{ Seq int }
				if json.Unmarshal(u.Data, &v) == nil {
					l.seq = v.Seq
				} else if _, err := fmt.Sscanf(string(u.Data), "not json, seq %d", &l.seq); err != nil {
					t.Fatalf("unexpected user record %q", u.Data)
				}
				lines = append(lines, l)
			}
		}
	}
	return lines, dropped
}

// checkKeyedDelivery asserts every line arrived, keyed lines once per key shard in order.
func checkKeyedDelivery(t *testing.T, lines []readLine, n int, exactlyOnce bool) {
	t.Helper()
	count := make([]int, n)
	lastSeq := map[string]int{}
	childOf := map[string]string{}
	for _, l := range lines {
		if l.seq < 0 || l.seq >= n {
			t.Fatalf("seq %d out of range", l.seq)
		}
		count[l.seq]++
		if l.seq%97 == 0 {
			continue // no key: a random fallback key
		}
		if want := fmt.Sprintf("user-%02d", l.seq%50); l.key != want {
			t.Fatalf("line %d went with key %q, want %q", l.seq, l.key, want)
		}
		if prev, ok := lastSeq[l.key]; ok && l.seq <= prev && count[l.seq] == 1 {
			t.Errorf("key %s: line %d read after line %d", l.key, l.seq, prev)
		}
		lastSeq[l.key] = max(lastSeq[l.key], l.seq)
		childOf[l.key] = l.shard
	}
	missing, dups := 0, 0
	for seq, c := range count {
		if c == 0 {
			missing++
			if missing < 5 {
				t.Errorf("line %d never arrived", seq)
			}
		}
		dups += max(c-1, 0)
	}
	if missing > 0 {
		t.Fatalf("%d of %d lines missing", missing, n)
	}
	if exactlyOnce && dups > 0 {
		t.Errorf("%d duplicates", dups)
	}
	t.Logf("%d lines read back, %d duplicates", len(lines), dups)
}

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestShardAwareKeysAcrossShards(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "keyed", 4)
	logDir := t.TempDir()
	const n = 4000
	writeKeyedLines(t, filepath.Join(logDir, "app.log"), 0, n)
	f, mf, _ := keyedFlow(t, endpoint, "keyed", logDir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := f.Run(ctx, true); err != nil {
		t.Fatalf("Run: %v", err)
	}
	lines, dropped := readShards(t, endpoint, "keyed")
	if dropped > 0 {
		t.Errorf("%d aggregates hold user records outside the shard they were read from", dropped)
	}
	checkKeyedDelivery(t, lines, n, true)
	shardsOfKey := map[string]map[string]bool{}
	for _, l := range lines {
		if l.seq%97 != 0 {
			if shardsOfKey[l.key] == nil {
				shardsOfKey[l.key] = map[string]bool{}
			}
			shardsOfKey[l.key][l.shard] = true
		}
	}
	used := map[string]bool{}
	for k, s := range shardsOfKey {
		if len(s) != 1 {
			t.Errorf("key %s on %d shards", k, len(s))
		}
		for id := range s {
			used[id] = true
		}
	}
	if len(shardsOfKey) != 50 || len(used) != 4 {
		t.Errorf("%d keys over %d shards, want 50 over 4", len(shardsOfKey), len(used))
	}
	if missing := counterValue(t, mf.PartitionKeyMissing); missing != float64((n+96)/97) {
		t.Errorf("kinship_partition_key_missing_total = %v, want %d", missing, (n+96)/97)
	}
	recs := counterValue(t, mf.RecordsSent)
	t.Logf("%d lines in %v records (%.1f lines per record)", n, recs, float64(n)/recs)
	if recs > n/10 {
		t.Errorf("%v records for %d lines: aggregation does not fill", recs, n)
	}
}

func TestShardAwareKeysThroughSplitShard(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "keyed", 2)
	logDir := t.TempDir()
	log := filepath.Join(logDir, "app.log")
	const half, n = 2000, 4000
	writeKeyedLines(t, log, 0, half)
	f, mf, api := keyedFlow(t, endpoint, "keyed", logDir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx, false) }()
	defer func() { stop(); <-done }()
	waitSent := func(want int) {
		t.Helper()
		for counterValue(t, mf.UserRecordsSent) < float64(want) {
			select {
			case err := <-done:
				t.Fatalf("flow stopped: %v", err)
			case <-ctx.Done():
				t.Fatalf("only %v of %d lines shipped", counterValue(t, mf.UserRecordsSent), want)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitSent(half)

	// Split the first shard in the middle of its range while the agent runs; its shard map
	// (refreshed every minute) does not know yet.
	c := kinesalitetest.Client(endpoint)
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("keyed"),
		ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("42535295865117307932921825928971026432")}); err != nil {
		t.Fatalf("SplitShard: %v", err)
	}
	for {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("keyed")})
		if err != nil {
			t.Fatal(err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	writeKeyedLines(t, log, half, n)
	waitSent(n)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	done <- nil // for the deferred stop

	lines, dropped := readShards(t, endpoint, "keyed")
	checkKeyedDelivery(t, lines, n, false)
	onChild := 0
	for _, l := range lines {
		if l.seq >= half && l.seq%97 != 0 {
			switch l.shard {
			case "shardId-000000000000":
				t.Errorf("line %d (written after the split) read from the closed parent shard", l.seq)
			case "shardId-000000000002", "shardId-000000000003":
				onChild++
			}
		}
	}
	if onChild == 0 {
		t.Errorf("no line written after the split reached a child shard")
	}
	// The agent's map was a minute from its refresh: lines after the split were packed for
	// the parent, so the shipper must have noticed and re-split (else this test proves little).
	if api.Resplits() == 0 {
		t.Errorf("no aggregate was re-split after the split")
	}
	if v := counterValue(t, mf.Resplits); v == 0 || v > float64(api.Resplits()) {
		t.Errorf("kinship_resplit_records_total = %v, want between 1 and the %d re-split requests", v, api.Resplits())
	}
	t.Logf("after the split: %d lines on child shards; %d misplaced aggregates (dropped by the KCL check, sent again), %d aggregates re-split",
		onChild, dropped, api.Resplits())
}
