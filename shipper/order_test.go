package shipper

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/internal/shardmap"
)

// fakeRouter routes a record to the shard named by its partition key; "?" is a record whose
// shards the map cannot tell.
type fakeRouter struct{ version atomic.Uint64 }

func (r *fakeRouter) Version() uint64 { return r.version.Load() }

func (r *fakeRouter) Route(dst []string, rec *Record) ([]string, uint64, bool, bool) {
	if rec.PartitionKey == "?" {
		return dst, r.Version(), false, false
	}
	return append(dst, rec.PartitionKey), r.Version(), false, true
}

// orderedDest is a fake destination that checks the shipper's promise for keyed flows: no
// request carries two records of one shard, no record of a shard is sent while another of
// that shard is unaccepted (in flight or failed and not yet retried), a record of unknown
// shards ("?") is sent alone, and each shard accepts its records in Source order.
type orderedDest struct {
	t    *testing.T
	fail func(seq, attempt int) bool // whether this attempt of record seq fails (throttled)

	mu          sync.Mutex
	outstanding map[string]int // shard -> the seq sent and not accepted
	unknownOut  bool
	attempts    map[int]int
	accepted    map[string][]int
	requests    int
}

func newOrderedDest(t *testing.T, fail func(seq, attempt int) bool) *orderedDest {
	return &orderedDest{t: t, fail: fail, outstanding: map[string]int{}, attempts: map[int]int{}, accepted: map[string][]int{}}
}

func (d *orderedDest) Limits() Limits { return Limits{MaxRecords: 50} }

func (d *orderedDest) Put(ctx context.Context, recs []Record) ([]error, error) {
	seqs := make([]int, len(recs))
	d.mu.Lock()
	d.requests++
	inReq := map[string]bool{}
	for i := range recs {
		seq, err := strconv.Atoi(string(recs[i].Data))
		if err != nil {
			d.t.Errorf("record data %q", recs[i].Data)
		}
		seqs[i] = seq
		sh := recs[i].PartitionKey
		if sh == "?" {
			if len(recs) > 1 || len(d.outstanding) > 0 {
				d.t.Errorf("record %d of unknown shard sent with %d others in the request and %d shards outstanding", seq, len(recs)-1, len(d.outstanding))
			}
			d.unknownOut = true
			continue
		}
		if d.unknownOut {
			d.t.Errorf("record %d sent while a record of unknown shard is out", seq)
		}
		if inReq[sh] {
			d.t.Errorf("two records of shard %s in one request", sh)
		}
		inReq[sh] = true
		if prev, ok := d.outstanding[sh]; ok && prev != seq {
			d.t.Errorf("record %d of shard %s sent while record %d of it is not accepted", seq, sh, prev)
		}
		d.outstanding[sh] = seq
	}
	d.mu.Unlock()

	time.Sleep(time.Millisecond) // let other requests overlap this one

	results := make([]error, len(recs))
	d.mu.Lock()
	defer d.mu.Unlock()
	failed := false
	for i := range recs {
		seq := seqs[i]
		d.attempts[seq]++
		if d.fail(seq, d.attempts[seq]) {
			results[i] = &EntryError{Code: "ProvisionedThroughputExceededException", Message: "slow down"}
			failed = true
			continue
		}
		sh := recs[i].PartitionKey
		if sh == "?" {
			d.unknownOut = false
		} else {
			delete(d.outstanding, sh)
		}
		d.accepted[sh] = append(d.accepted[sh], seq)
	}
	if !failed {
		return nil, nil
	}
	return results, nil
}

func orderedItems(n int, shardOf func(i int) string) []Item {
	out := make([]Item, n)
	for i := range out {
		out[i] = Item{Seq: uint64(i), Record: Record{PartitionKey: shardOf(i), Data: []byte(strconv.Itoa(i)), UserRecords: 1}}
	}
	return out
}

func orderedShipper(src Source, dst Destination, r ShardRouter) *Shipper {
	return New(src, dst, Options{MaxInFlight: 4, BackoffBase: time.Millisecond, BackoffMax: 4 * time.Millisecond,
		MinBytesPerSec: 1 << 30, MinRecordsPerSec: 1 << 20, Shards: r})
}

// Per-record throttling and several requests in flight: every shard still accepts its
// records in the order the Source gave them, each record once, and no shard ever has two
// records out at once.
func TestOrderedKeepsEachShardInOrderUnderRetries(t *testing.T) {
	const n = 2000
	shardOf := func(i int) string {
		if i%251 == 0 {
			return "?"
		}
		return fmt.Sprintf("shard-%d", (i*7)%5)
	}
	src := newFakeSource(orderedItems(n, shardOf))
	dst := newOrderedDest(t, func(seq, attempt int) bool { return seq%3 == 0 && attempt <= 1+seq%4 })
	r := &fakeRouter{}
	r.version.Store(1)
	s := orderedShipper(src, dst, r)
	stop := runShipper(t, s)
	waitAcked(t, src, 60*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	assertAckedOnce(t, src, n)
	dst.mu.Lock()
	defer dst.mu.Unlock()
	total := 0
	for sh, seqs := range dst.accepted {
		total += len(seqs)
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Errorf("shard %s accepted record %d after %d", sh, seqs[i], seqs[i-1])
				break
			}
		}
	}
	if total != n {
		t.Errorf("%d records accepted, want %d", total, n)
	}
	t.Logf("%d requests for %d records", dst.requests, n)
}

// A shard whose record keeps failing holds back only that shard: the others' records,
// read past it from the Source, are all delivered meanwhile.
func TestOrderedHoldsBackOnlyTheFailingShard(t *testing.T) {
	const n = 400
	var stuck atomic.Bool
	stuck.Store(true)
	src := newFakeSource(orderedItems(n, func(i int) string { return fmt.Sprintf("shard-%d", i%4) }))
	dst := newOrderedDest(t, func(seq, _ int) bool { return seq == 0 && stuck.Load() })
	r := &fakeRouter{}
	s := orderedShipper(src, dst, r)
	runShipper(t, s)
	deadline := time.Now().Add(30 * time.Second)
	for {
		acks := src.ackCounts()
		if len(acks) == n-n/4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records acked while shard-0's first record fails, want the %d of the other shards", len(acks), n-n/4)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for seq := range src.ackCounts() {
		if seq%4 == 0 {
			t.Fatalf("record %d of shard-0 acked while the shard's first record was never accepted", seq)
		}
	}
	stuck.Store(false)
	waitAcked(t, src, 30*time.Second)
	dst.mu.Lock()
	defer dst.mu.Unlock()
	if got := dst.accepted["shard-0"]; len(got) != n/4 || got[0] != 0 {
		t.Errorf("shard-0 accepted %d records starting with %v", len(got), got[:min(1, len(got))])
	}
}

// versionRouter is fakeRouter that remembers the map version each record was last routed under.
type versionRouter struct {
	fakeRouter
	mu     sync.Mutex
	routed map[string]uint64
}

func (r *versionRouter) Route(dst []string, rec *Record) ([]string, uint64, bool, bool) {
	ids, v, split, ok := r.fakeRouter.Route(dst, rec)
	r.mu.Lock()
	r.routed[string(rec.Data)] = v
	r.mu.Unlock()
	return ids, v, split, ok
}

// A new map version (a reshard) lets nothing routed under it go out until every record sent
// under the old one was accepted: holds computed under different maps do not exclude each other.
func TestOrderedDrainsBeforeANewShardMap(t *testing.T) {
	const n = 300
	r := &versionRouter{routed: map[string]uint64{}}
	r.version.Store(1)
	var mu sync.Mutex
	out := map[uint64]int{} // records out, by the version they were routed under
	var violations, newOnes atomic.Int64
	src := newFakeSource(orderedItems(n, func(i int) string { return fmt.Sprintf("shard-%d", i%3) }))
	dst := &fakeDest{limits: Limits{MaxRecords: 10}, put: func(_ context.Context, call int, recs []Record) ([]error, error) {
		vs := make([]uint64, len(recs))
		r.mu.Lock()
		for i := range recs {
			vs[i] = r.routed[string(recs[i].Data)]
		}
		r.mu.Unlock()
		mu.Lock()
		for _, v := range vs {
			for ov, c := range out {
				if ov != v && c > 0 {
					violations.Add(1)
				}
			}
			out[v]++
			if v == 2 {
				newOnes.Add(1)
			}
		}
		mu.Unlock()
		if call == 5 {
			r.version.Store(2)
		}
		time.Sleep(time.Millisecond)
		mu.Lock()
		for _, v := range vs {
			out[v]--
		}
		mu.Unlock()
		return nil, nil
	}}
	s := orderedShipper(src, dst, r)
	stop := runShipper(t, s)
	waitAcked(t, src, 30*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if v := violations.Load(); v > 0 {
		t.Errorf("%d records sent while records routed under another map version were out", v)
	}
	if newOnes.Load() == 0 {
		t.Errorf("no record was routed under the new map")
	}
}

// The router puts a record on the shards ShardAware will send it to: one for an aggregate
// packed for its shard and for a plain record, both halves for an aggregate that spans them
// (a re-split), and "cannot tell" before the map is known.
func TestShardRouterRoutesLikeShardAware(t *testing.T) {
	api := &twoShards{}
	m := shardmap.New(api, "s", shardmap.Options{})
	r := NewShardRouter(m)
	lo, hi := keysOn(false, 2), keysOn(true, 2)
	packed := aggregator.EncodeUserRecords(nil, []aggregator.UserRecord{{PartitionKey: hi[0], Data: []byte("1")}, {PartitionKey: hi[1], Data: []byte("2")}})
	spanning := aggregator.EncodeUserRecords(nil, []aggregator.UserRecord{{PartitionKey: lo[0], Data: []byte("1")}, {PartitionKey: hi[0], Data: []byte("2")}})
	if _, _, _, ok := r.Route(nil, &Record{PartitionKey: hi[0], Data: packed}); ok {
		t.Errorf("routed a record before the shard map was known")
	}
	if err := m.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		rec   Record
		want  []string
		split bool
	}{
		{"packed for its shard", Record{PartitionKey: hi[0], ExplicitHashKey: half.String(), Data: packed}, []string{"hi"}, false},
		{"packed, no explicit hash key", Record{PartitionKey: hi[0], Data: packed}, []string{"hi"}, false},
		{"plain", Record{PartitionKey: lo[0], Data: []byte("line")}, []string{"lo"}, false},
		{"spanning both shards", Record{PartitionKey: lo[0], ExplicitHashKey: "0", Data: spanning}, []string{"lo", "hi"}, true},
		{"packed for the other shard", Record{PartitionKey: hi[0], ExplicitHashKey: "0", Data: packed}, []string{"hi"}, true},
	} {
		ids, _, split, ok := r.Route(nil, &tc.rec)
		if !ok || split != tc.split || fmt.Sprint(ids) != fmt.Sprint(tc.want) {
			t.Errorf("%s: routed to %v (split %v, ok %v), want %v (split %v)", tc.name, ids, split, ok, tc.want, tc.split)
		}
	}
}

// The look-ahead past a held record is bounded: with one shard stuck, the shipper reads no
// more than 4 requests' worth of records from the Source, however many wait there.
func TestOrderedLookAheadIsBounded(t *testing.T) {
	const n = 1000
	var stuck atomic.Bool
	stuck.Store(true)
	src := newFakeSource(orderedItems(n, func(int) string { return "shard-0" }))
	dst := newOrderedDest(t, func(seq, _ int) bool { return seq == 0 && stuck.Load() })
	s := orderedShipper(src, dst, &fakeRouter{})
	runShipper(t, s)
	deadline := time.Now().Add(10 * time.Second)
	for {
		dst.mu.Lock()
		attempts := dst.attempts[0]
		dst.mu.Unlock()
		if attempts >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("record 0 sent %d times in 10s", attempts)
		}
		time.Sleep(5 * time.Millisecond)
	}
	read := n - src.Pending()
	if want := 1 + lookAheadRequests*dst.Limits().MaxRecords + 1; read > want {
		t.Errorf("%d records read from the Source while the first one is held, want at most %d", read, want)
	}
	stuck.Store(false)
	waitAcked(t, src, 30*time.Second)
}
