package aggregator

import (
	"crypto/md5"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"
)

// A skipped line is not shipped, yet the position moves past it: in the open aggregate's
// marks, or, with nothing open, in a record of marks only after every record before it.
func TestSkipMovesMarks(t *testing.T) {
	for _, aggregate := range []bool{true, false} {
		out := &collector{}
		a, err := New(Options{MaxRecordBytes: 4096, MaxAge: time.Hour, Aggregate: aggregate}, out)
		if err != nil {
			t.Fatal(err)
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(a.Add(0, []byte("a"), 2))
		must(a.Skip(0, 4))  // into the open aggregate (aggregate) or kept (not)
		must(a.Skip(1, 10)) // another source
		must(a.Add(0, []byte("c"), 6))
		must(a.Flush())
		must(a.Skip(0, 8)) // nothing open: a record of marks only
		must(a.Flush())
		must(a.Close())
		recs := out.records()
		var data []string
		for _, r := range recs {
			if r.UserRecords == 0 {
				if len(r.Data) != 0 {
					t.Errorf("aggregate %v: a record of marks only has data %q", aggregate, r.Data)
				}
			} else {
				data = append(data, string(r.Data))
			}
		}
		if last := recs[len(recs)-1]; last.UserRecords != 0 || !slices.Equal(last.Marks, []Mark{{0, 8}}) {
			t.Errorf("aggregate %v: last record %+v, want marks only {0 8}", aggregate, last)
		}
		got := map[uint32]int64{}
		for _, r := range recs {
			for _, m := range r.Marks {
				if m.Offset < got[m.Source] {
					t.Errorf("aggregate %v: mark of source %d went back to %d", aggregate, m.Source, m.Offset)
				}
				got[m.Source] = m.Offset
			}
		}
		if got[0] != 8 || got[1] != 10 {
			t.Errorf("aggregate %v: final marks %v, want source 0 at 8 and 1 at 10", aggregate, got)
		}
		if !aggregate && !slices.Equal(data, []string{"a", "c"}) {
			t.Errorf("records %q, want the two lines plain", data)
		}
		if aggregate && (len(data) != 1 || !strings.Contains(data[0], "a") || !strings.Contains(data[0], "c")) {
			t.Errorf("records %q, want one aggregate of a and c", data)
		}
	}
}

// Marks of lines skipped while nothing is open leave at MaxAge on their own, not only at
// Flush: a file whose last lines are all filtered out still gets its position saved.
func TestSkipAloneLeavesAtAge(t *testing.T) {
	out := &collector{got: make(chan struct{}, 4)}
	a, err := New(Options{MaxRecordBytes: 4096, MaxAge: 20 * time.Millisecond, Aggregate: false}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Skip(3, 42); err != nil {
		t.Fatal(err)
	}
	select {
	case <-out.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no record of marks delivered")
	}
	if r := out.records()[0]; r.UserRecords != 0 || !slices.Equal(r.Marks, []Mark{{3, 42}}) {
		t.Errorf("record %+v", r)
	}
}

func TestShardedSkip(t *testing.T) {
	out := &collect{}
	a, err := NewSharded(KeyedOptions{
		Options: Options{MaxRecordBytes: 4096, MaxAge: time.Hour, Aggregate: true},
		Key:     RegexKey(mustRE(`key=(\w+)`)),
	}, out)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Source 0: a (to 10), skipped (to 20), b (to 30), skipped (to 40). Source 1: only a
	// skipped line, before anything of it was packed.
	must(a.Add(0, []byte("key=a"), 10))
	must(a.Skip(0, 20))
	must(a.Add(0, []byte("key=b"), 30))
	must(a.Skip(0, 40))
	must(a.Skip(1, 7))
	must(a.Close())
	got := map[uint32]int64{}
	lines := 0
	for _, r := range out.recs {
		lines += r.UserRecords
		for _, m := range r.Marks {
			if m.Offset < got[m.Source] {
				t.Errorf("mark of source %d went back to %d", m.Source, m.Offset)
			}
			got[m.Source] = m.Offset
		}
	}
	if lines != 2 || got[0] != 40 || got[1] != 7 {
		t.Errorf("lines %d, marks %v; want 2 lines, source 0 at 40, 1 at 7 (records %+v)", lines, got, out.recs)
	}
}

// DETERMINISTIC: each record's partition key is the MD5 of its data in hex, so that
// identical records land on the same shard.
func TestDeterministicKeys(t *testing.T) {
	md5hex := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	out := &collector{}
	a, err := New(Options{PartitionKey: Deterministic, Aggregate: false}, out)
	if err != nil {
		t.Fatal(err)
	}
	lines := []string{"one\n", "two\n", "one\n", string(magic[:]) + "x"}
	for i, l := range lines {
		if err := a.Add(0, []byte(l), int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	recs := out.records()
	if len(recs) != len(lines) {
		t.Fatalf("%d records for %d lines", len(recs), len(lines))
	}
	for i, r := range recs {
		if r.PartitionKey != md5hex(lines[i]) {
			t.Errorf("record %d: key %q, want md5 hex of %q", i, r.PartitionKey, lines[i])
		}
	}
	if _, err := New(Options{PartitionKey: Deterministic, Aggregate: true}, out); err == nil {
		t.Error("New took deterministic keys with aggregation (one key per aggregate would be wrong)")
	}
	if err := CheckPartitionKey(Deterministic); err != nil {
		t.Error(err)
	}

	// Aggregated: the keyed packer with DeterministicKey; each user record keeps its key.
	sh := &collect{}
	s, err := NewSharded(KeyedOptions{Options: Options{MaxAge: time.Hour, Aggregate: true}, Key: DeterministicKey(), Shards: quarterShards{}}, sh)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range lines[:3] {
		if err := s.Add(0, []byte(l), int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range sh.recs {
		urs, _, err := Deaggregate(r.Data, r.PartitionKey)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range urs {
			seen++
			if u.PartitionKey != md5hex(string(u.Data)) {
				t.Errorf("user record %q: key %q", u.Data, u.PartitionKey)
			}
		}
	}
	if seen != 3 {
		t.Errorf("%d user records, want 3", seen)
	}
}
