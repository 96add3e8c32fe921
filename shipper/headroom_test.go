package shipper

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinship-agent/kinship/internal/shardmap"
)

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol*math.Abs(want)+1e-9 }

// A steady rate reads as that rate once the window is full, and the current partial second
// neither dilutes nor inflates it.
func TestRateWindowSteadyRate(t *testing.T) {
	clock := newFakeClock()
	wc := windowClock{epoch: clock.Now(), seconds: 60}
	w := newRateWindow(60)
	// 100 kB and 10 records every 100 ms: 1 MB/s and 100 records/s, for two minutes.
	for i := range 1200 {
		w.add(wc.second(clock.Now()), 100_000, 10)
		clock.advance(100 * time.Millisecond)
		if i%97 == 0 && i >= 600 { // a full window, read at many phases of the second
			now := clock.Now()
			b, r := w.sums(wc.second(now))
			span := wc.span(now).Seconds()
			// Up to one add (0.1 s of data) early or late over the span read.
			if tol := 0.1 / span * 1.01; !near(float64(b)/span, 1e6, tol) || !near(float64(r)/span, 100, tol) {
				t.Fatalf("after %v: %.0f B/s, %.1f records/s over %.2fs; want 1e6 and 100", now.Sub(wc.epoch), float64(b)/span, float64(r)/span, span)
			}
		}
	}
}

// A rate is an average over the whole window, from the start too: a burst right after start
// is not divided by the instant since (that would warn at each start of a host sending a
// big record now and then). Once sending stops, the rate decays to 0 within the window.
func TestRateWindowStartAndDecay(t *testing.T) {
	clock := newFakeClock()
	wc := windowClock{epoch: clock.Now(), seconds: 60}
	w := newRateWindow(60)
	clock.advance(300 * time.Millisecond)
	w.add(wc.second(clock.Now()), 59<<20, 1)
	rate := func() float64 {
		now := clock.Now()
		b, _ := w.sums(wc.second(now))
		return float64(b) / wc.span(now).Seconds()
	}
	if got, want := rate(), float64(59<<20)/59.3; !near(got, want, 1e-9) {
		t.Fatalf("a burst read at once: %.0f B/s, want %.0f (over the window)", got, want)
	}
	clock.advance(9*time.Second + 700*time.Millisecond)
	if got := rate(); !near(got, 1<<20, 1e-9) {
		t.Fatalf("10 s later: %.0f B/s, want %d", got, 1<<20)
	}
	clock.advance(49 * time.Second)
	if got := rate(); !near(got, 1<<20, 1e-9) {
		t.Fatalf("59 s later: %.0f B/s, want %d", got, 1<<20)
	}
	clock.advance(time.Second)
	if got := rate(); got != 0 {
		t.Fatalf("a window after the last record: %.0f B/s, want 0", got)
	}
	// Long silences (more than a window between two records) empty everything.
	w.add(wc.second(clock.Now()), 5, 1)
	clock.advance(time.Hour)
	w.add(wc.second(clock.Now()), 7, 1)
	if b, r := w.sums(wc.second(clock.Now())); b != 7 || r != 1 {
		t.Fatalf("after an hour of silence the window holds %d bytes, %d records; want 7, 1", b, r)
	}
	// A clock stepped back counts into the newest second instead of corrupting the sums.
	w.add(wc.second(clock.Now().Add(-30*time.Second)), 3, 1)
	if b, r := w.sums(wc.second(clock.Now())); b != 10 || r != 2 {
		t.Fatalf("after a step back the window holds %d bytes, %d records; want 10, 2", b, r)
	}
}

// evenShards is a stream of n open shards of equal hash ranges, placing records like
// Kinesis. listErr refuses ListShards; describe answers DescribeStreamSummary (else it is
// refused too).
type evenShards struct {
	n        int
	listErr  error
	describe bool
	lists    atomic.Int32
	fail     func(i int) bool // entry i of each request is throttled
	starts   []shardmap.Hash  // by shardOf, for PutRecords (one caller at a time)
	ids      []string
	base     int // the first shard's number: a resharded stream's shards have new ids
}

func (s *evenShards) step() *big.Int {
	return new(big.Int).Div(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(int64(s.n)))
}

// shardOf returns the index of the shard whose range holds h: the last one starting at or
// before it.
func (s *evenShards) shardOf(h shardmap.Hash) int {
	if s.starts == nil {
		for i := range s.n {
			start, _ := shardmap.ParseHash(new(big.Int).Mul(s.step(), big.NewInt(int64(i))).String())
			s.starts = append(s.starts, start)
			s.ids = append(s.ids, fmt.Sprintf("shardId-%012d", s.base+i))
		}
	}
	i := sort.Search(s.n, func(i int) bool { return h.Less(s.starts[i]) })
	return i - 1
}

func (s *evenShards) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	s.lists.Add(1)
	if s.listErr != nil {
		return nil, s.listErr
	}
	out := &kinesis.ListShardsOutput{}
	step := s.step()
	for i := range s.n {
		start := new(big.Int).Mul(step, big.NewInt(int64(i)))
		end := new(big.Int).Sub(new(big.Int).Add(start, step), big.NewInt(1))
		if i == s.n-1 {
			end = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
		}
		out.Shards = append(out.Shards, types.Shard{ShardId: aws.String(fmt.Sprintf("shardId-%012d", s.base+i)),
			HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(start.String()), EndingHashKey: aws.String(end.String())},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}})
	}
	return out, nil
}

func (s *evenShards) DescribeStreamSummary(context.Context, *kinesis.DescribeStreamSummaryInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	if !s.describe {
		return nil, errors.New("AccessDeniedException: not authorized to perform kinesis:DescribeStreamSummary")
	}
	return &kinesis.DescribeStreamSummaryOutput{StreamDescriptionSummary: &types.StreamDescriptionSummary{OpenShardCount: aws.Int32(int32(s.n))}}, nil
}

func (s *evenShards) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	out := &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(0)}
	for i, e := range in.Records {
		h := shardmap.KeyHash(*e.PartitionKey)
		if e.ExplicitHashKey != nil {
			h, _ = shardmap.ParseHash(*e.ExplicitHashKey)
		}
		r := types.PutRecordsResultEntry{ShardId: &s.ids[s.shardOf(h)], SequenceNumber: aws.String("1")}
		if s.fail != nil && s.fail(i) {
			r = types.PutRecordsResultEntry{ErrorCode: aws.String(throughputExceeded), ErrorMessage: aws.String("Rate exceeded for shard")}
			*out.FailedRecordCount++
		}
		out.Records = append(out.Records, r)
	}
	return out, nil
}

// entries builds n entries of size data bytes with keys made by key(i).
func entries(n, size int, key func(i int) string) []types.PutRecordsRequestEntry {
	out := make([]types.PutRecordsRequestEntry, n)
	for i := range out {
		out[i] = types.PutRecordsRequestEntry{Data: make([]byte, size), PartitionKey: aws.String(key(i))}
	}
	return out
}

// headroomMetrics is what the metrics would export of h's reading: series name → stream or
// shard → value (an unknown shard count is left out).
func headroomMetrics(t *testing.T, h *Headroom) map[string]map[string]float64 {
	t.Helper()
	r := h.Read()
	out := map[string]map[string]float64{
		"kinship_stream_open_shards":             {},
		"kinship_stream_write_utilization":       {r.Stream: r.Utilization},
		"kinship_shard_write_bytes_per_second":   {},
		"kinship_shard_write_records_per_second": {},
		"kinship_shard_throttled_total":          {},
	}
	if r.OpenShards > 0 {
		out["kinship_stream_open_shards"][r.Stream] = float64(r.OpenShards)
	}
	for _, sh := range r.Shards {
		out["kinship_shard_write_bytes_per_second"][sh.ID] = sh.BytesPerSec
		out["kinship_shard_write_records_per_second"][sh.ID] = sh.RecordsPerSec
		out["kinship_shard_throttled_total"][sh.ID] = float64(sh.Throttled)
	}
	return out
}

func put(t *testing.T, h *Headroom, recs []types.PutRecordsRequestEntry) {
	t.Helper()
	if _, err := h.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: recs}); err != nil {
		t.Fatal(err)
	}
}

// A keyed flow: each shard's rates come from where Kinesis put the records, the busiest
// shard sets the utilization, by bytes or by records (an aggregate is one record, however
// many lines it holds), and throttled records are counted on the shard the map places them.
func TestHeadroomKeyedBusiestShard(t *testing.T) {
	api := &evenShards{n: 2}
	m := shardmap.New(api, "s", shardmap.Options{})
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	h := NewHeadroom(api, HeadroomOptions{Stream: "s", Shards: m, Clock: clock})
	const lo, hi = "shardId-000000000000", "shardId-000000000001"
	loKeys, hiKeys := keysOn(false, 4), keysOn(true, 4)

	// For 70 s: 500 kB/s to lo in 4 records of 12.5 kB, 400 records/s of 10 bytes to hi.
	recs := entries(4, 12500-len(loKeys[0]), func(i int) string { return loKeys[i] })
	recs = append(recs, entries(40, 10-len(hiKeys[0]), func(i int) string { return hiKeys[i%4] })...)
	for range 700 {
		put(t, h, recs)
		clock.advance(100 * time.Millisecond)
	}
	got := headroomMetrics(t, h)
	if v := got["kinship_shard_write_bytes_per_second"][lo]; !near(v, 500_000, 1e-9) {
		t.Errorf("lo: %.0f B/s, want 500000", v)
	}
	if v := got["kinship_shard_write_records_per_second"][hi]; !near(v, 400, 1e-9) {
		t.Errorf("hi: %.1f records/s, want 400", v)
	}
	if v := got["kinship_stream_write_utilization"]["s"]; !near(v, 500_000.0/ShardBytesPerSec, 1e-9) {
		t.Errorf("utilization %.3f, want %.3f (lo's bytes)", v, 500_000.0/ShardBytesPerSec)
	}
	if v := got["kinship_stream_open_shards"]["s"]; v != 2 {
		t.Errorf("open shards %v, want 2", v)
	}

	// Now hi gets 700 records/s: records are the limit that counts.
	recs = entries(70, 10-len(hiKeys[0]), func(i int) string { return hiKeys[i%4] })
	for range 600 {
		put(t, h, recs)
		clock.advance(100 * time.Millisecond)
	}
	got = headroomMetrics(t, h)
	if v := got["kinship_stream_write_utilization"]["s"]; !near(v, 0.7, 1e-9) {
		t.Errorf("utilization %.3f, want 0.7 (hi's 700 records/s)", v)
	}
	if v := got["kinship_shard_write_bytes_per_second"][lo]; v != 0 {
		t.Errorf("lo: %.0f B/s a minute after its last record, want 0", v)
	}

	// Throttled records have no ShardId; the map places them.
	api.fail = func(i int) bool { return i < 3 }
	put(t, h, []types.PutRecordsRequestEntry{
		{Data: []byte("x"), PartitionKey: aws.String(loKeys[0])},
		{Data: []byte("x"), PartitionKey: aws.String(loKeys[1]), ExplicitHashKey: aws.String(m.Current().ByID(hi).StartKey)},
		{Data: []byte("x"), PartitionKey: aws.String(hiKeys[1])},
		{Data: []byte("x"), PartitionKey: aws.String(hiKeys[2])},
	})
	got = headroomMetrics(t, h)
	if l, h := got["kinship_shard_throttled_total"][lo], got["kinship_shard_throttled_total"][hi]; l != 1 || h != 2 {
		t.Errorf("throttled lo=%v hi=%v, want 1 and 2", l, h)
	}
}

// Random keys: the utilization is this host's total spread evenly over the open shards
// (read with ListShards every ShardsEvery), while the per-shard series show where records
// actually went.
func TestHeadroomRandomKeysEvenSpread(t *testing.T) {
	api := &evenShards{n: 4}
	clock := newFakeClock()
	h := NewHeadroom(api, HeadroomOptions{Stream: "s", Lister: api, RandomKeys: true, ShardsEvery: 5 * time.Minute,
		Clock: clock})
	k := 0
	// 2.5 MiB/s in 64 KiB records with random keys, for a minute and a half.
	for range 900 {
		put(t, h, entries(4, 64<<10-8, func(int) string { k++; return fmt.Sprintf("k%07d", k) }))
		clock.advance(100 * time.Millisecond)
	}
	got := headroomMetrics(t, h)
	if v := got["kinship_stream_write_utilization"]["s"]; !near(v, 0.625, 0.01) {
		t.Errorf("utilization %.3f, want 0.625 (2.5 MiB/s over 4 shards)", v)
	}
	if v := got["kinship_stream_open_shards"]["s"]; v != 4 {
		t.Errorf("open shards %v, want 4", v)
	}
	var sum float64
	for _, v := range got["kinship_shard_write_bytes_per_second"] {
		sum += v
	}
	if len(got["kinship_shard_write_bytes_per_second"]) != 4 || !near(sum, 2.5*(1<<20), 0.01) {
		t.Errorf("per-shard rates %v, want 4 shards summing to 2.5 MiB/s", got["kinship_shard_write_bytes_per_second"])
	}
	// 90 s of requests: listed at the first request, again after 5 minutes only.
	if n := api.lists.Load(); n != 1 {
		t.Errorf("ListShards called %d times in 90 s, want 1", n)
	}
	clock.advance(5 * time.Minute)
	put(t, h, entries(1, 1, func(int) string { return "x" }))
	if n := api.lists.Load(); n != 2 {
		t.Errorf("ListShards called %d times after 5 minutes, want 2", n)
	}
}

// An identity that may not list the stream's shards: PutRecords goes on unharmed, the
// refusal is logged once, the open shard count stays unset, and the utilization is the
// busiest shard measured. DescribeStreamSummary is the fallback when only it is allowed.
func TestHeadroomShardCountRefused(t *testing.T) {
	denied := errors.New("AccessDeniedException: not authorized to perform kinesis:ListShards")
	for _, describe := range []bool{false, true} {
		t.Run(fmt.Sprintf("describe=%v", describe), func(t *testing.T) {
			api := &evenShards{n: 2, listErr: denied, describe: describe}
			clock := newFakeClock()
			logs := &logBuffer{}
			h := NewHeadroom(api, HeadroomOptions{Stream: "s", Lister: api, RandomKeys: true, ShardsEvery: time.Second,
				Clock: clock, Logger: logs.logger()})
			recs := entries(1, 10000, func(int) string { return "same-key" })
			for range 350 {
				put(t, h, recs)
				clock.advance(200 * time.Millisecond)
			}
			if n := api.lists.Load(); n < 60 {
				t.Errorf("ListShards asked %d times in 70 s with ShardsEvery 1s, want it asked again", n)
			}
			got := headroomMetrics(t, h)
			util := got["kinship_stream_write_utilization"]["s"]
			if describe {
				if strings.Contains(logs.String(), "cannot read") {
					t.Errorf("logged a refusal although DescribeStreamSummary answered:\n%s", logs)
				}
				if v, ok := got["kinship_stream_open_shards"]["s"]; !ok || v != 2 {
					t.Errorf("open shards %v (set %v), want 2 from DescribeStreamSummary", v, ok)
				}
				// Even spread of 50040 B/s over 2 shards.
				if !near(util, 25020.0/ShardBytesPerSec, 1e-6) {
					t.Errorf("utilization %v, want %v", util, 25020.0/ShardBytesPerSec)
				}
				return
			}
			if n := strings.Count(logs.String(), "cannot read the stream's open shard count"); n != 1 {
				t.Errorf("refusal logged %d times, want once:\n%s", n, logs)
			}
			if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("a refusal is not worth a warning:\n%s", logs)
			}
			if v, ok := got["kinship_stream_open_shards"]["s"]; ok {
				t.Errorf("open shards set to %v without permission to read it", v)
			}
			// One key: everything on one shard, 50040 B/s measured.
			if !near(util, 50040.0/ShardBytesPerSec, 1e-6) {
				t.Errorf("utilization %v, want %v (the busiest shard measured)", util, 50040.0/ShardBytesPerSec)
			}
		})
	}
}

// Per-shard series stop at 64 shards: a stream of hundreds of shards would cost a series per
// shard per flow per host.
func TestHeadroomShardSeriesBounded(t *testing.T) {
	for _, n := range []int{64, 65} {
		api := &evenShards{n: n}
		h := NewHeadroom(api, HeadroomOptions{Stream: "s", Lister: api, Clock: newFakeClock()})
		k := 0
		put(t, h, entries(500, 10, func(int) string { k++; return fmt.Sprint(k) }))
		got := headroomMetrics(t, h)
		series := len(got["kinship_shard_write_bytes_per_second"])
		if n <= MaxShardReadings && series == 0 || n > MaxShardReadings && series != 0 {
			t.Errorf("%d shards: %d per-shard series", n, series)
		}
		if got["kinship_stream_open_shards"]["s"] != float64(n) || got["kinship_stream_write_utilization"]["s"] == 0 {
			t.Errorf("%d shards: stream series %v", n, got)
		}
	}
}

// The warning: once when this host goes over half a shard, not again while it stays there
// (for over an hour), again when it dips and rises, but never twice within the hour: a
// crossing within the hour is told once the hour is over, if still above.
func TestHeadroomWarnsOncePerCrossing(t *testing.T) {
	api := &evenShards{n: 2}
	clock := newFakeClock()
	logs := &logBuffer{}
	h := NewHeadroom(api, HeadroomOptions{Stream: "s", Clock: clock, Logger: logs.logger()})
	key := keysOn(false, 1)[0]
	warnings := func() int { return strings.Count(logs.String(), "uses over half of a shard's write capacity") }
	// One request a second is enough: the warning is decided once a second.
	perSec := map[int][]types.PutRecordsRequestEntry{}
	send := func(d time.Duration, recsPerSec int) {
		if perSec[recsPerSec] == nil {
			perSec[recsPerSec] = entries(recsPerSec, 1, func(int) string { return key })
		}
		for end := clock.Now().Add(d); clock.Now().Before(end); clock.advance(time.Second) {
			put(t, h, perSec[recsPerSec])
		}
	}
	steps := []struct {
		what      string
		d         time.Duration
		recs      int // per second: 100 = 0.1 of a shard
		wantTotal int
	}{
		{"2 minutes at 40%", 2 * time.Minute, 400, 0},
		{"70 minutes at 60%", 70 * time.Minute, 600, 1},
		{"a dip", 2 * time.Minute, 200, 1},
		{"up again, over an hour after the first warning", 2 * time.Minute, 600, 2},
		{"a dip", 2 * time.Minute, 200, 2},
		{"up again within the hour", 2 * time.Minute, 600, 2},
		{"still up once the hour is over", 60 * time.Minute, 600, 3},
	}
	for _, st := range steps {
		send(st.d, st.recs)
		if n := warnings(); n != st.wantTotal {
			t.Fatalf("after %s: %d warnings, want %d:\n%s", st.what, n, st.wantTotal, logs)
		}
	}
	for _, want := range []string{"stream=s", "shard=shardId-000000000000", "utilization=0.5", "records_per_sec=5", "window=1m0s"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("warning lacks %q:\n%s", want, logs)
		}
	}
}

// After a reshard, the closed shards' series leave once nothing written to them is left in
// the window; the open shards' stay (at 0) while nothing is written to them.
func TestHeadroomClosedShardsLeave(t *testing.T) {
	api := &evenShards{n: 2}
	m := shardmap.New(api, "s", shardmap.Options{})
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	h := NewHeadroom(api, HeadroomOptions{Stream: "s", Shards: m, Clock: clock})
	k := 0
	random := func(int) string { k++; return fmt.Sprint(k) }
	put(t, h, entries(100, 10, random))

	// Split into 4 new shards (ids 2 to 5); 2 and 3 get no records.
	*api = evenShards{n: 4, base: 2}
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock.advance(30 * time.Second)
	put(t, h, entries(100, 10, func(int) string { return keysOn(true, 1)[0] }))
	shards := func() []string {
		var ids []string
		for id := range headroomMetrics(t, h)["kinship_shard_write_bytes_per_second"] {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return ids
	}
	if got, want := fmt.Sprint(shards()), "[shardId-000000000000 shardId-000000000001 shardId-000000000004]"; got != want {
		t.Errorf("30 s after the reshard: shards %s, want %s (the old ones still in the window)", got, want)
	}
	clock.advance(31 * time.Second)
	if got, want := fmt.Sprint(shards()), "[shardId-000000000004]"; got != want {
		t.Errorf("a window after the reshard: shards %s, want %s", got, want)
	}
	if v := headroomMetrics(t, h)["kinship_stream_open_shards"]["s"]; v != 4 {
		t.Errorf("open shards %v, want 4", v)
	}
}

// The shipper's workers put concurrently while the metrics are scraped: every accepted
// record is counted once (run with -race).
func TestHeadroomConcurrentWorkers(t *testing.T) {
	api := &evenShards{n: 4}
	api.shardOf(shardmap.Hash{}) // build the fake's tables before the workers read them
	clock := newFakeClock()      // standing still: the window is exactly 59 s when read
	hr := NewHeadroom(api, HeadroomOptions{Stream: "s", Lister: api, Clock: clock})
	const n = 5000
	src := newFakeSource(items(n, 100))
	s := New(src, NewKinesis(hr, "s", Limits{MaxRecords: 50}), Options{MaxInFlight: 4})
	stop := runShipper(t, s)
	scraped := make(chan struct{})
	go func() {
		defer close(scraped)
		for range 20 {
			hr.Read()
		}
	}()
	waitAcked(t, src, 30*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	<-scraped
	got := headroomMetrics(t, hr)
	var records float64
	for _, v := range got["kinship_shard_write_records_per_second"] {
		records += v
	}
	if span := 59.0; !near(records*span, n, 1e-9) {
		t.Errorf("%.0f records counted in the window, want %d", records*span, n)
	}
}
