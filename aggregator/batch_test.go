package aggregator

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitRecords waits until c holds n records, failing (not hanging) if they never come.
func waitRecords(t *testing.T, c *collector, n int) []Record {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for len(c.records()) < n {
		select {
		case <-c.got:
		case <-deadline:
			t.Fatalf("%d records delivered, want %d: aggregates held back", len(c.records()), n)
		}
	}
	return c.records()
}

// batchedAggregator hashes 4 aggregates side by side (a fake 8-lane server that computes
// with crypto/md5, so that the test does not depend on the CPU) and lets full aggregates
// wait for peers as long as wait. Each aggregate holds 4 lines of 1000 bytes: the line
// after 4k lines seals the k-th.
func batchedAggregator(t *testing.T, maxAge, wait time.Duration) (*Aggregator, *collector) {
	t.Helper()
	c := &collector{got: make(chan struct{}, 1000)}
	a, err := New(Options{Aggregate: true, PartitionKey: "k", MaxRecordBytes: 4096, MaxAge: maxAge, IdleAge: maxAge,
		Workers: 4, MD5: &MD5Server{lanes: 8}, batchWait: wait}, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if a.hash.batch != 4 {
		t.Fatalf("batch of %d, want 4", a.hash.batch)
	}
	return a, c
}

func addLines(t *testing.T, a *Aggregator, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		line := bytes.Repeat([]byte{byte('a' + i%26)}, 1000)
		if err := a.Add(0, line, int64(i+1)*1000); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFullAggregatesHashedTogether: at high rates full aggregates wait until a batch of
// them can be hashed side by side, and Flush hashes what waits at once.
func TestFullAggregatesHashedTogether(t *testing.T) {
	a, c := batchedAggregator(t, time.Hour, time.Hour)
	addLines(t, a, 0, 4+1) // the first full aggregate goes alone: no rate yet, and it is needed
	waitRecords(t, c, 1)
	addLines(t, a, 5, 4*4+1)          // 3 more, sealed fast: they wait for a fourth
	time.Sleep(50 * time.Millisecond) // they would be delivered by now if they did not wait
	if n := len(c.records()); n != 1 {
		t.Fatalf("%d records delivered while 3 full aggregates wait for a fourth, want 1", n)
	}
	addLines(t, a, 17, 4*5+1) // the fifth completes the batch
	waitRecords(t, c, 5)
	addLines(t, a, 21, 4*6+1) // one more waits; Flush must not wait for its peers
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	recs := c.records()
	if len(recs) != 7 {
		t.Fatalf("%d records after Flush, want 7", len(recs))
	}
	i := 0
	for _, r := range recs {
		users, aggregated, _ := Deaggregate(r.Data, r.PartitionKey)
		if aggregated != (r.UserRecords > 1) || len(users) != r.UserRecords {
			t.Fatalf("record of %d lines: %d decoded, aggregated %v", r.UserRecords, len(users), aggregated)
		}
		for _, u := range users {
			if want := bytes.Repeat([]byte{byte('a' + i%26)}, 1000); !bytes.Equal(u.Data, want) {
				t.Fatalf("line %d out of order or corrupt", i)
			}
			i++
		}
	}
	if i != 4*6+1 {
		t.Fatalf("%d lines delivered, want %d", i, 4*6+1)
	}
}

// TestAgedAggregateNotHeld: an aggregate sealed by age is hashed at once, and takes the
// full ones waiting for peers with it: at low rates nothing waits for lanes to fill.
func TestAgedAggregateNotHeld(t *testing.T) {
	a, c := batchedAggregator(t, 30*time.Millisecond, time.Hour)
	addLines(t, a, 0, 4*2+1) // 2 full: one goes, one waits; a line stays open until MaxAge
	recs := waitRecords(t, c, 3)
	if recs[2].UserRecords != 1 {
		t.Fatalf("the aged aggregate holds %d lines, want 1", recs[2].UserRecords)
	}
}

// TestHeldAggregatesGoAfterWait: full aggregates wait for peers at most batchWait.
func TestHeldAggregatesGoAfterWait(t *testing.T) {
	a, c := batchedAggregator(t, time.Hour, 40*time.Millisecond)
	addLines(t, a, 0, 4*2+1) // 2 full: one goes at once, one waits for peers that never come
	waitRecords(t, c, 2)
}

// TestAggregatorMD5PathsAgree packs the same lines with crypto/md5 and with the multi-lane
// server, many aggregates in flight: the records are the same bytes, and they decode.
func TestAggregatorMD5PathsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var lines [][]byte
	for range 20000 {
		l := make([]byte, rng.IntN(400))
		for j := range l {
			l[j] = byte(rng.Uint32())
		}
		lines = append(lines, l)
	}
	got := map[string][]Record{}
	for name, srv := range md5Servers(t) {
		c := &collector{}
		a, err := New(Options{Aggregate: true, PartitionKey: "k", MaxRecordBytes: 64 << 10, MaxAge: time.Hour,
			Workers: 16, MD5: srv}, c)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range lines {
			if err := a.Add(uint32(i%3), l, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		got[name] = c.records()
	}
	var first []Record
	for name, recs := range got {
		if first == nil {
			first = recs
			n := 0
			for i, r := range recs {
				users, err := DecodeAggregate(r.Data)
				if err != nil {
					t.Fatalf("%s: record %d: %v", name, i, err)
				}
				for _, u := range users {
					if !bytes.Equal(u.Data, lines[n]) {
						t.Fatalf("%s: line %d differs", name, n)
					}
					n++
				}
			}
			if n != len(lines) {
				t.Fatalf("%s: %d lines, want %d", name, n, len(lines))
			}
			continue
		}
		if len(recs) != len(first) {
			t.Fatalf("%d records one way, %d the other", len(first), len(recs))
		}
		for i := range recs {
			if !bytes.Equal(recs[i].Data, first[i].Data) {
				t.Fatalf("record %d differs between the MD5 paths", i)
			}
		}
	}
	if len(first) < 16 {
		t.Fatalf("only %d records: not enough aggregates in flight to fill lanes", len(first))
	}
}

// TestSharedMD5Server: aggregators of several flows hash through one server (their lanes fill
// together); each gets its own records, whole, and closing one leaves the other working.
func TestSharedMD5Server(t *testing.T) {
	srv := NewMD5Server()
	defer srv.Close()
	const lines = 3000
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for f := range 3 {
		wg.Go(func() {
			c := &collector{}
			a, err := New(Options{Aggregate: true, PartitionKey: "k", MaxRecordBytes: 16 << 10, MaxAge: time.Hour, MD5: srv}, c)
			if err != nil {
				errs <- err
				return
			}
			for i := range lines * (f + 1) {
				if err := a.Add(0, fmt.Appendf(nil, "flow %d line %d", f, i), int64(i)); err != nil {
					errs <- err
					return
				}
			}
			if err := a.Close(); err != nil {
				errs <- err
				return
			}
			n := 0
			for _, r := range c.records() {
				users, aggregated, _ := Deaggregate(r.Data, r.PartitionKey)
				if !aggregated && r.UserRecords > 1 {
					errs <- fmt.Errorf("flow %d: a record of %d lines does not decode", f, r.UserRecords)
					return
				}
				for _, u := range users {
					if want := fmt.Sprintf("flow %d line %d", f, n); string(u.Data) != want {
						errs <- fmt.Errorf("flow %d: got %q, want %q", f, u.Data, want)
						return
					}
					n++
				}
			}
			if n != lines*(f+1) {
				errs <- fmt.Errorf("flow %d: %d lines, want %d", f, n, lines*(f+1))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestShardedMD5PathsAgree: keyed packing gives the same records through crypto/md5 and
// the multi-lane server, with many aggregates in flight, and they decode.
func TestShardedMD5PathsAgree(t *testing.T) {
	got := map[string][]Record{}
	for name, srv := range md5Servers(t) {
		out := &collect{}
		a, err := NewSharded(KeyedOptions{
			Options: Options{MaxRecordBytes: 4096, MaxAge: time.Hour, Aggregate: true, Workers: 16, MD5: srv},
			Key:     RegexKey(mustRE(`key=(\w+)`)), Shards: quarterShards{}, Fallback: "fallback-key",
		}, out)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20000 {
			if err := a.Add(0, fmt.Appendf(nil, "seq=%d key=k%d %s", i, i%50, bytes.Repeat([]byte{'x'}, i%300)), int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		got[name] = out.recs
	}
	var first []Record
	for name, recs := range got {
		n := 0
		for i, r := range recs {
			users, aggregated, _ := Deaggregate(r.Data, r.PartitionKey)
			if aggregated != (r.UserRecords > 1) || len(users) != r.UserRecords {
				t.Fatalf("%s: record %d of %d lines: %d decoded, aggregated %v", name, i, r.UserRecords, len(users), aggregated)
			}
			n += len(users)
		}
		if n != 20000 {
			t.Fatalf("%s: %d lines, want 20000", name, n)
		}
		if first == nil {
			first = recs
			continue
		}
		if len(recs) != len(first) {
			t.Fatalf("%d records one way, %d the other", len(first), len(recs))
		}
		for i := range recs {
			if !bytes.Equal(recs[i].Data, first[i].Data) || recs[i].ExplicitHashKey != first[i].ExplicitHashKey {
				t.Fatalf("record %d differs between the MD5 paths", i)
			}
		}
	}
}

// TestShardedFullAggregatesHashedTogether: keyed packing holds full aggregates for peers
// too, and Flush lets them go.
func TestShardedFullAggregatesHashedTogether(t *testing.T) {
	c := &collector{got: make(chan struct{}, 1000)}
	a, err := NewSharded(KeyedOptions{
		Options: Options{MaxRecordBytes: 4096, MaxAge: time.Hour, Aggregate: true, Workers: 4,
			MD5: &MD5Server{lanes: 8}, batchWait: time.Hour},
		Key: RegexKey(mustRE(`key=(\w+)`)),
	}, c)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	add := func(from, to int) {
		for i := from; i < to; i++ {
			if err := a.Add(0, fmt.Appendf(nil, "key=k %d %s", i, bytes.Repeat([]byte{'x'}, 900)), int64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(0, 5) // 4 lines per aggregate: the first full one goes at once (no rate yet)
	waitRecords(t, c, 1)
	add(5, 9) // the second, sealed fast, waits for peers
	time.Sleep(50 * time.Millisecond)
	if n := len(c.records()); n != 1 {
		t.Fatalf("%d records delivered while a full aggregate waits for peers, want 1", n)
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := len(c.records()); n != 3 {
		t.Fatalf("%d records after Flush, want 3", n)
	}
}

// TestFailedNewLeavesNoGoroutine: an aggregator that cannot start must not leave its MD5
// server's goroutine behind (a reload that keeps failing would pile them up).
func TestFailedNewLeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 5 {
		if _, err := NewSharded(KeyedOptions{Options: Options{Aggregate: true}, Key: RegexKey(mustRE(`k=(\w+)`)),
			Fallback: string([]byte{0xff})}, &collect{}); err == nil {
			t.Fatal("an invalid fallback key was accepted")
		}
		if _, err := New(Options{Aggregate: true, PartitionKey: string([]byte{0xff})}, &collect{}); err == nil {
			t.Fatal("an invalid partition key was accepted")
		}
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("%d goroutines before failed News, %d after", before, after)
	}
}

// TestShardedRecordsBuiltInPlaceOrCopied: a record is built in the room before its lines
// when its key table fits there, else copied out; both shapes decode to the lines, in
// order, under their own keys, and a bucket reused for the other shape stays right.
func TestShardedRecordsBuiltInPlaceOrCopied(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys int
		klen int
	}{{"one long key", 1, maxPartitionKeyLen}, {"few short keys", 20, 8}, {"table larger than the room", 400, 60}, {"mixed", 50, 40}} {
		t.Run(tc.name, func(t *testing.T) {
			out := &collect{}
			a, err := NewSharded(KeyedOptions{
				Options: Options{MaxRecordBytes: 64 << 10, MaxAge: time.Hour, Aggregate: true},
				Key:     RegexKey(mustRE(`key=(\w+)`)), Shards: quarterShards{},
			}, out)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for i := range 6000 {
				k := fmt.Sprintf("%0*d", tc.klen, i%tc.keys)
				line := fmt.Sprintf("key=%s seq=%d %s", k, i, bytes.Repeat([]byte{'x'}, i%97))
				want = append(want, line)
				if err := a.Add(0, []byte(line), int64(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, r := range out.recs {
				users, aggregated, _ := Deaggregate(r.Data, r.PartitionKey)
				if aggregated != (r.UserRecords > 1) {
					t.Fatalf("record of %d lines: aggregated %v", r.UserRecords, aggregated)
				}
				for _, u := range users {
					if !strings.Contains(string(u.Data), "key="+u.PartitionKey+" ") {
						t.Fatalf("line %q under key %q", u.Data, u.PartitionKey)
					}
					got[u.PartitionKey] = append(got[u.PartitionKey], string(u.Data))
				}
			}
			for i, line := range want {
				k := fmt.Sprintf("%0*d", tc.klen, i%tc.keys)
				if len(got[k]) == 0 || got[k][0] != line {
					t.Fatalf("line %d of key %s missing or out of order", i, k)
				}
				got[k] = got[k][1:]
			}
		})
	}
}

// TestBlockedConsumerHashesFullBatches: while Put blocks (the consumer pushes back),
// aggregates are sealed as slowly as Put lets room go, yet full ones must still be hashed a
// lane count at a time: waiting for peers costs nothing while the delivery goroutine is
// busy. The fake 4-lane server makes the batch 4; batchWait is so short that no seal ever
// counts as fast, so nothing batches by rate. The test paces the consumer: one Put returns
// only once the producer is blocked on a full pipeline.
func TestBlockedConsumerHashesFullBatches(t *testing.T) {
	const lanes = 4
	t.Run("Aggregator", func(t *testing.T) {
		checkBlockedConsumerBatches(t, lanes, func(opts Options, out Output) (batchPacker, int, error) {
			opts.PartitionKey = "k"
			a, err := New(opts, out)
			if err != nil {
				return nil, 0, err
			}
			// The producer blocks opening an aggregate with every slot taken.
			return a, a.nslots, nil
		})
	})
	t.Run("Sharded", func(t *testing.T) {
		checkBlockedConsumerBatches(t, lanes, func(opts Options, out Output) (batchPacker, int, error) {
			a, err := NewSharded(KeyedOptions{Options: opts, Key: RegexKey(mustRE(`key=(\w+)`))}, out)
			if err != nil {
				return nil, 0, err
			}
			// The producer blocks handing a sealed aggregate to the full delivery queue:
			// one in Put, a queue of Workers+2, and the one being handed over.
			return a, a.hash.workers + 4, nil
		})
	})
}

type batchPacker interface {
	Add(source uint32, line []byte, end int64) error
	Close() error
}

// checkBlockedConsumerBatches packs 4 lines of 900 bytes per aggregate under one key with
// a consumer that the test paces (see TestBlockedConsumerHashesFullBatches). newPacker
// returns the packer and how many aggregates it seals before the producer blocks while
// nothing is delivered.
func checkBlockedConsumerBatches(t *testing.T, lanes int, newPacker func(Options, Output) (batchPacker, int, error)) {
	const linesPerAgg, rounds = 4, 16
	var mu sync.Mutex
	var batches []int
	entered, gate := make(chan struct{}, 100), make(chan struct{})
	c := &collector{put: func(*Record) error {
		entered <- struct{}{}
		<-gate
		return nil
	}}
	a, capacity, err := newPacker(Options{Aggregate: true, MaxRecordBytes: 4096, MaxAge: time.Hour, IdleAge: time.Hour,
		MD5: &MD5Server{lanes: lanes}, batchWait: time.Nanosecond,
		onBatch: func(n int) { mu.Lock(); batches = append(batches, n); mu.Unlock() }}, c)
	if err != nil {
		t.Fatal(err)
	}
	var opened sync.Once
	open := func() { opened.Do(func() { close(gate) }) }
	defer a.Close()
	defer open() // a failed check must not leave Close waiting for Put
	line := func(i int) []byte {
		return fmt.Appendf(nil, "key=k %c%s", 'a'+i%26, bytes.Repeat([]byte{byte('a' + i%26)}, 900-8))
	}
	// Aggregate k is sealed by line k*linesPerAgg+1, which then blocks: with d records
	// delivered, the producer stops after (d+capacity)*linesPerAgg lines.
	total := (rounds-1+capacity)*linesPerAgg + 1
	var added atomic.Int64
	produced := make(chan error, 1)
	go func() {
		for i := range total {
			if err := a.Add(0, line(i), int64(i+1)*1000); err != nil {
				produced <- err
				return
			}
			added.Add(1)
		}
		produced <- nil
	}()
	waitAdded := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for added.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d lines added, want %d", added.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
		if got := added.Load(); got != n {
			t.Fatalf("%d lines added while %d fit the pipeline", got, n)
		}
	}
	var blocked []int
	for d := range rounds {
		<-entered // the delivery goroutine is in Put
		waitAdded(int64((d + capacity) * linesPerAgg))
		if d == rounds-1 {
			mu.Lock()
			blocked = slices.Clone(batches)
			mu.Unlock()
		}
		gate <- struct{}{}
	}
	open()
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// The first aggregate is needed by an idle consumer: it may go alone, or with the
	// few sealed before the need reached the batcher. After it, everything sealed under
	// backpressure goes a full batch at a time.
	full := 0
	for _, n := range blocked[1:] {
		if n != lanes {
			t.Fatalf("batches while the consumer blocked: %v, want %d aggregates each after the first", blocked, lanes)
		}
		full++
	}
	if full < 3 {
		t.Fatalf("batches while the consumer blocked: %v, want at least 3 of %d", blocked, lanes)
	}
	i := 0
	for _, r := range c.records() {
		users, aggregated, _ := Deaggregate(r.Data, r.PartitionKey)
		if aggregated != (r.UserRecords > 1) || len(users) != r.UserRecords {
			t.Fatalf("record of %d lines: %d decoded, aggregated %v", r.UserRecords, len(users), aggregated)
		}
		for _, u := range users {
			if !bytes.Equal(u.Data, line(i)) {
				t.Fatalf("line %d out of order or corrupt", i)
			}
			i++
		}
	}
	if i != total {
		t.Fatalf("%d lines delivered, want %d", i, total)
	}
}
