package shipper

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinship-agent/kinship/internal/shardmap"
	"github.com/kinship-agent/kinship/internal/testenv/faultproxy"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// heldPerShard is what kinesalite holds per shard among the records keep selects: bytes as
// Kinesis meters them (data + partition key) and records.
func heldPerShard(t *testing.T, endpoint, stream string, keep func(pk string) bool) (bytes, records map[string]float64) {
	t.Helper()
	bytes, records = map[string]float64{}, map[string]float64{}
	for _, sr := range kinesalitetest.ReadShards(t, endpoint, stream) {
		id := aws.ToString(sr.Shard.ShardId)
		for _, r := range sr.Records {
			if pk := aws.ToString(r.PartitionKey); keep(pk) {
				bytes[id] += float64(len(r.Data) + len(pk))
				records[id]++
			}
		}
	}
	return bytes, records
}

// A keyed flow (ShardAware in front, records sent with explicit hash keys) writes a known
// rate to a 2-shard stream: the per-shard rates times the window are exactly what
// kinesalite holds per shard from the records sent within the window, the utilization is
// the busy shard's records/s, and the warning is logged once although the host stays over
// half a shard.
func TestHeadroomKinesalite(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	const stream = "headroom"
	kinesalitetest.CreateStream(t, endpoint, stream, 2)
	client := NewKinesisClient(sdkConfig(t, endpoint))
	m := shardmap.New(client, stream, shardmap.Options{})
	clock := newFakeClock()
	logs := &logBuffer{}
	// A 4 s window keeps kinesalite's load small: the rates are over the last 3 to 4 s.
	hr := NewHeadroom(client, HeadroomOptions{Stream: stream, Shards: m, Window: 4 * time.Second,
		Clock: clock, Logger: logs.logger()})
	dst := NewKinesis(NewShardAware(hr, m, Limits{}, nil), stream, Limits{})
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	snap := m.Current()
	if len(snap.Shards) != 2 {
		t.Fatalf("kinesalite stream has %d shards, want 2", len(snap.Shards))
	}
	busy, quiet := snap.Shards[0], snap.Shards[1]

	// Every 100 ms for 6 s: 60 records of 100 bytes to the busy shard (600 records/s: 0.6 of
	// its record limit) and 10 of 1000 bytes to the quiet one (about 100 kB/s). The keys
	// name the step.
	for step := range 60 {
		var recs []Record
		for i := range 60 {
			recs = append(recs, Record{PartitionKey: fmt.Sprintf("%03d-b-%d", step, i), ExplicitHashKey: busy.StartKey,
				Data: []byte(strings.Repeat("b", 100)), UserRecords: 1})
		}
		for i := range 10 {
			recs = append(recs, Record{PartitionKey: fmt.Sprintf("%03d-q-%d", step, i), ExplicitHashKey: quiet.StartKey,
				Data: []byte(strings.Repeat("q", 1000)), UserRecords: 1})
		}
		results, err := dst.Put(context.Background(), recs)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range results {
			if r != nil {
				t.Fatalf("record %d rejected: %v", i, r)
			}
		}
		clock.advance(100 * time.Millisecond)
	}
	// Read at 6.0 s: the window is seconds 3, 4, 5 and the first instant of 6, so 3 s and
	// the records of steps 30 to 59.
	const span = 3.0
	got := headroomMetrics(t, hr)
	heldBytes, heldRecords := heldPerShard(t, endpoint, stream, func(pk string) bool { return pk >= "030-" })
	for _, id := range []string{busy.ID, quiet.ID} {
		if b := got["kinship_shard_write_bytes_per_second"][id] * span; !near(b, heldBytes[id], 1e-9) {
			t.Errorf("shard %s: %.0f B/s over %vs = %.0f bytes; kinesalite holds %.0f from the window", id,
				got["kinship_shard_write_bytes_per_second"][id], span, b, heldBytes[id])
		}
		if r := got["kinship_shard_write_records_per_second"][id] * span; !near(r, heldRecords[id], 1e-9) {
			t.Errorf("shard %s: %.0f records over the window; kinesalite holds %.0f from it", id, r, heldRecords[id])
		}
	}
	if heldRecords[busy.ID] != 1800 || heldRecords[quiet.ID] != 300 {
		t.Errorf("kinesalite holds %v records from the window, want 1800 and 300", heldRecords)
	}
	if v := got["kinship_stream_write_utilization"][stream]; !near(v, 0.6, 1e-9) {
		t.Errorf("utilization %v, want 0.6 (600 records/s of 1000)", v)
	}
	if v := got["kinship_stream_open_shards"][stream]; v != 2 {
		t.Errorf("open shards %v, want 2", v)
	}
	if n := strings.Count(logs.String(), "uses over half of a shard's write capacity"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "shard="+busy.ID) {
		t.Errorf("the warning does not name the busy shard %s:\n%s", busy.ID, logs)
	}
}

// Random keys through the fault proxy: entries the proxy throttles
// (ProvisionedThroughputExceededException, per record) are counted on the shard their key
// hashes to, with the map from the periodic ListShards, and only accepted records count
// towards the rates.
func TestHeadroomFaultProxyThrottlesPerShard(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	const stream = "headroom-faults"
	kinesalitetest.CreateStream(t, endpoint, stream, 2)
	throttled := func(i, _ int) bool { return i%3 == 0 }
	proxy := faultproxy.Start(t, endpoint, func(n, _ int) faultproxy.Fault {
		if n%2 == 0 {
			return faultproxy.Fault{Kind: faultproxy.FailEntries, Fail: throttled}
		}
		return faultproxy.Fault{}
	})
	client := NewKinesisClient(sdkConfig(t, proxy.URL), func(o *kinesis.Options) { o.Retryer = aws.NopRetryer{} })
	clock := newFakeClock()
	logs := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("headroom log:\n%s\nproxy events: %+v", logs, proxy.Events())
		}
	})
	hr := NewHeadroom(client, HeadroomOptions{Stream: stream, Lister: client, RandomKeys: true,
		Clock: clock, Logger: logs.logger()})
	dst := NewKinesis(hr, stream, Limits{})

	// kinesalite splits the hash range of 2 shards at 2^127.
	shardOf := func(pk string) string {
		if shardmap.KeyHash(pk).Hi >= 1<<63 {
			return "shardId-000000000001"
		}
		return "shardId-000000000000"
	}
	wantThrottled := map[string]float64{}
	for n := range 10 {
		var recs []Record
		for i := range 50 {
			recs = append(recs, Record{PartitionKey: fmt.Sprintf("random-%d-%d", n, i), Data: []byte("line"), UserRecords: 1})
		}
		results, err := dst.Put(context.Background(), recs)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range results {
			if n%2 == 0 && throttled(i, len(recs)) {
				if r == nil {
					t.Fatalf("request %d record %d: accepted, want throttled", n, i)
				}
				wantThrottled[shardOf(recs[i].PartitionKey)]++
			} else if r != nil {
				t.Fatalf("request %d record %d: %v", n, i, r)
			}
		}
		clock.advance(time.Second)
	}
	span := (time.Minute - time.Second).Seconds() // read at a whole second
	got := headroomMetrics(t, hr)
	if wantThrottled["shardId-000000000000"] == 0 || wantThrottled["shardId-000000000001"] == 0 {
		t.Fatalf("the keys throttled only one shard: %v", wantThrottled)
	}
	for id, want := range wantThrottled {
		if v := got["kinship_shard_throttled_total"][id]; v != want {
			t.Errorf("shard %s: %v throttled, want %v", id, v, want)
		}
	}
	heldBytes, _ := heldPerShard(t, endpoint, stream, func(string) bool { return true })
	for id, held := range heldBytes {
		if b := got["kinship_shard_write_bytes_per_second"][id] * span; !near(b, held, 1e-9) {
			t.Errorf("shard %s: %.0f bytes over the window; kinesalite holds %.0f", id, b, held)
		}
	}
	if v := got["kinship_stream_open_shards"][stream]; v != 2 {
		t.Errorf("open shards %v, want 2", v)
	}
	// The even spread estimate: this host's total over 2 shards, by records (1 record is
	// under 1 kB, so records are the tighter limit).
	records := 10*50 - float64(5*17)
	if v := got["kinship_stream_write_utilization"][stream]; !near(v, records/span/2/ShardRecordsPerSec, 1e-9) {
		t.Errorf("utilization %v, want %v (%v records over %vs spread over 2 shards)", v, records/span/2/ShardRecordsPerSec, records, span)
	}
}
