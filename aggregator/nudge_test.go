package aggregator

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// An idle consumer gets a lone line long before MaxAge; without Nudge it waits for MaxAge.
func TestNudgeSealsEarlyAtLowRate(t *testing.T) {
	out := &collector{got: make(chan struct{}, 16)}
	a, err := New(Options{MaxAge: 30 * time.Second, Aggregate: true}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	if err := a.Add(0, []byte("first"), 6); err != nil {
		t.Fatal(err)
	}
	select {
	case <-out.got:
		t.Fatal("a line was sealed before MaxAge with nobody nudging")
	case <-time.After(100 * time.Millisecond):
	}
	a.Nudge()
	select {
	case <-out.got:
	case <-time.After(10 * time.Second):
		t.Fatal("a nudged aggregate was not sealed within 10 s (MaxAge 30 s)")
	}

	// A Nudge before the line comes counts too: the next aggregate leaves early.
	a.Nudge()
	time.Sleep(50 * time.Millisecond)
	if err := a.Add(0, []byte("second"), 13); err != nil {
		t.Fatal(err)
	}
	select {
	case <-out.got:
	case <-time.After(10 * time.Second):
		t.Fatal("an aggregate opened after a Nudge was not sealed within 10 s (MaxAge 30 s)")
	}
	recs := out.records()
	if len(recs) != 2 || string(recs[0].Data) != "first" || string(recs[1].Data) != "second" {
		t.Fatalf("records %+v", recs)
	}
}

// A consumer that is idle all the time (it nudges constantly) does not shrink records while
// lines come fast enough to fill them before MaxAge: here a record takes about 100 ms to fill,
// five times IdleAge, and each still leaves full.
func TestNudgeKeepsRecordsFullAtHighRate(t *testing.T) {
	const maxBytes = 64 << 10
	out := &collector{}
	a, err := New(Options{MaxRecordBytes: maxBytes, MaxAge: 30 * time.Second, Aggregate: true}, out)
	if err != nil {
		t.Fatal(err)
	}
	line := bytes.Repeat([]byte("l"), 100)
	const lines = 5_000 // about 8 full records
	for i := range lines {
		if i%10 == 0 {
			a.Nudge()
			time.Sleep(time.Millisecond) // at most ~1 MB/s: a record fills in 60 ms or more
		}
		if err := a.Add(0, line, int64(i+1)*101); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	recs := out.records()
	full := 0
	for _, r := range recs[:len(recs)-1] {
		if len(r.Data)+len(r.PartitionKey) > maxBytes-2*len(line) {
			full++
		}
	}
	// A goroutine descheduled for longer than IdleAge on a busy machine may let one record
	// go early; the others must be full.
	if full < len(recs)-2 {
		t.Fatalf("%d records, %d of them full: nudges shrank records at a high rate", len(recs), full)
	}
}

// The keyed aggregator honours Nudge too: a lone line leaves long before MaxAge.
func TestShardedNudgeSealsEarly(t *testing.T) {
	out := &collector{got: make(chan struct{}, 16)}
	a, err := NewSharded(KeyedOptions{Options: Options{MaxAge: 30 * time.Second, Aggregate: true},
		Key: JSONFieldKey("k"), Shards: quarterShards{}}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Add(0, []byte(`{"k":"a"}`), 10); err != nil {
		t.Fatal(err)
	}
	select {
	case <-out.got:
		t.Fatal("a line was sealed before MaxAge with nobody nudging")
	case <-time.After(100 * time.Millisecond):
	}
	a.Nudge()
	select {
	case <-out.got:
	case <-time.After(10 * time.Second):
		t.Fatal("a nudged aggregate was not sealed within 10 s (MaxAge 30 s)")
	}
}

// Close while the age goroutine holds the lock, blocked handing sealed aggregates to a full
// delivery queue behind a Put that waits: Close returns once Put does, with every line
// delivered (no deadlock between the lock, the queue and Close).
func TestShardedCloseWhileAgeLoopBlocks(t *testing.T) {
	release := make(chan struct{})
	out := &collector{put: func(*Record) error { <-release; return nil }}
	// No shard map: every key is its own aggregate, so one age tick seals many.
	a, err := NewSharded(KeyedOptions{Options: Options{MaxAge: 5 * time.Millisecond, Aggregate: true},
		Key: JSONFieldKey("k")}, out)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		if err := a.Add(0, fmt.Appendf(nil, `{"k":"%d"}`, i), int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // the age goroutine seals, and blocks on the queue
	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	time.Sleep(20 * time.Millisecond)
	close(release)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after Put was released")
	}
	if got := len(out.records()); got != n {
		t.Fatalf("%d records delivered, want %d", got, n)
	}
}
