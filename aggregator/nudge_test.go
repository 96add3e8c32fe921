package aggregator

import (
	"bytes"
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
