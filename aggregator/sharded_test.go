package aggregator

import (
	"crypto/md5"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// quarterShards splits the hash key space into four shards by the MD5's first byte.
type quarterShards struct{}

func (quarterShards) Locate(pk string) (id, ehk string, version uint64, ok bool) {
	q := md5.Sum([]byte(pk))[0] >> 6
	return "shard-" + strconv.Itoa(int(q)), strconv.Itoa(int(q)), 1, true
}

type collect struct {
	mu   sync.Mutex
	recs []Record
}

func (c *collect) Put(r *Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := *r
	cp.Data = append([]byte(nil), r.Data...)
	cp.Marks = append([]Mark(nil), r.Marks...)
	c.recs = append(c.recs, cp)
	return nil
}

func TestShardedPacksOneShardPerAggregateInOrder(t *testing.T) {
	out := &collect{}
	a, err := NewSharded(KeyedOptions{
		Options: Options{MaxRecordBytes: 4096, MaxAge: time.Hour, Aggregate: true},
		Key:     RegexKey(mustRE(`key=(\w+)`)), Shards: quarterShards{}, Fallback: "fallback-key",
	}, out)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	var end int64
	srcEnd := map[uint32]int64{}
	for i := range n {
		line := fmt.Sprintf("seq=%d key=k%d", i, i%50)
		if i%100 == 7 {
			line = fmt.Sprintf("seq=%d nokey", i)
		}
		end += int64(len(line) + 1)
		srcEnd[uint32(i%2)] = end
		if err := a.Add(uint32(i%2), []byte(line), end); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	lastSeq := map[string]int{}
	seen := 0
	multi := 0
	lastMark := map[uint32]int64{}
	for _, r := range out.recs {
		urs, agg, _ := Deaggregate(r.Data, r.PartitionKey)
		if agg {
			multi++
			if len(r.PartitionKey) == 0 || r.ExplicitHashKey == "" {
				t.Fatalf("aggregate without keys: pk %q ehk %q", r.PartitionKey, r.ExplicitHashKey)
			}
		}
		for _, u := range urs {
			_, ehk, _, _ := quarterShards{}.Locate(u.PartitionKey)
			if agg && ehk != r.ExplicitHashKey {
				t.Fatalf("user record of key %s (shard %s) in an aggregate for shard %s", u.PartitionKey, ehk, r.ExplicitHashKey)
			}
			f := strings.Fields(string(u.Data))
			seq, _ := strconv.Atoi(strings.TrimPrefix(f[0], "seq="))
			if f[1] == "nokey" && u.PartitionKey != "fallback-key" {
				t.Fatalf("line without key went with key %q", u.PartitionKey)
			}
			if prev, ok := lastSeq[u.PartitionKey]; ok && seq <= prev {
				t.Fatalf("key %s: seq %d after %d", u.PartitionKey, seq, prev)
			}
			lastSeq[u.PartitionKey] = seq
			seen++
		}
		for _, m := range r.Marks {
			if m.Offset < lastMark[m.Source] {
				t.Fatalf("mark of source %d went back from %d to %d", m.Source, lastMark[m.Source], m.Offset)
			}
			lastMark[m.Source] = m.Offset
		}
	}
	if seen != n {
		t.Fatalf("%d user records, want %d", seen, n)
	}
	if multi == 0 || len(out.recs) > n/10 {
		t.Fatalf("%d records for %d lines (%d aggregated): aggregation does not fill", len(out.recs), n, multi)
	}
	if lastMark[0] != srcEnd[0] || lastMark[1] != srcEnd[1] {
		t.Errorf("final marks %v do not reach the ends %v", lastMark, srcEnd)
	}
}

func TestShardedMarksWaitForOpenAggregates(t *testing.T) {
	out := &collect{}
	a, err := NewSharded(KeyedOptions{
		Options: Options{MaxRecordBytes: 4096, MaxAge: time.Hour, Aggregate: true},
		Key:     RegexKey(mustRE(`key=(\w+)`)),
	}, out) // no shard map: one aggregate per key
	if err != nil {
		t.Fatal(err)
	}
	// Source 0: a (0-10), b (10-20), a (20-30). Flushing a's aggregate alone must not mark
	// past b's line, which is still open.
	for _, l := range []struct {
		key string
		end int64
	}{{"a", 10}, {"b", 20}, {"b", 30}, {"a", 40}} {
		if err := a.Add(0, []byte("key="+l.key), l.end); err != nil {
			t.Fatal(err)
		}
	}
	a.mu.Lock()
	a.seal(a.open["a"], false)
	a.mu.Unlock()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if len(out.recs) != 2 {
		t.Fatalf("%d records, want 2", len(out.recs))
	}
	if m := out.recs[0].Marks; len(m) != 1 || m[0].Offset != 10 {
		t.Errorf("first record (key a) marks %v, want offset 10 (b's lines from 10 are still open)", m)
	}
	if m := out.recs[1].Marks; len(m) != 1 || m[0].Offset != 40 {
		t.Errorf("second record marks %v, want 40", m)
	}
}

func mustRE(s string) *regexp.Regexp { return regexp.MustCompile(s) }

type discardOut struct{}

func (discardOut) Put(*Record) error { return nil }

// BenchmarkShardedAdd is the cost per line of keyed packing: the key from a JSON field, its
// shard (MD5 of the key) and the copy into that shard's aggregate; sealed aggregates are
// built and hashed by the hash workers.
func BenchmarkShardedAdd(b *testing.B) {
	a, err := NewSharded(KeyedOptions{Options: Options{Aggregate: true, MaxAge: time.Hour},
		Key: JSONFieldKey("user.id"), Shards: quarterShards{}}, discardOut{})
	if err != nil {
		b.Fatal(err)
	}
	lines := make([][]byte, 64)
	for i := range lines {
		lines[i] = []byte(strings.Replace(string(benchLine), "u-1234567", fmt.Sprintf("u-%d", i), 1))
	}
	b.SetBytes(int64(len(benchLine)))
	i := 0
	for b.Loop() {
		if err := a.Add(0, lines[i&63], int64(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	_ = a.Close()
}

// movingShards puts every key on shard "v<version>", as if each refresh resharded.
type movingShards struct{ v uint64 }

func (m *movingShards) Locate(string) (string, string, uint64, bool) {
	return "v" + strconv.FormatUint(m.v, 10), strconv.FormatUint(m.v, 10), m.v, true
}

func TestShardedSealsOpenAggregatesWhenShardsChange(t *testing.T) {
	out := &collect{}
	loc := &movingShards{v: 1}
	// Three lines fill an aggregate: the child's fills up while the parent's is still open.
	a, err := NewSharded(KeyedOptions{Options: Options{MaxRecordBytes: 4096, MaxRecords: 3, MaxAge: time.Hour, Aggregate: true},
		Key: RegexKey(mustRE(`key=(\w+)`)), Shards: loc}, out)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range []string{"key=a 1", "key=a 2", "key=a 3", "key=a 4", "key=a 5"} {
		if i == 2 {
			loc.v = 2 // resharded: the key's later lines belong to another shard
		}
		if err := a.Add(0, []byte(l), int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range out.recs {
		urs, _, _ := Deaggregate(r.Data, r.PartitionKey)
		for _, u := range urs {
			got = append(got, string(u.Data))
		}
	}
	if strings.Join(got, ",") != "key=a 1,key=a 2,key=a 3,key=a 4,key=a 5" || len(out.recs) != 2 {
		t.Errorf("records %d, lines in delivery order %v; want 2 records, lines in order", len(out.recs), got)
	}
}

// reshardingShards is a map that is refreshed (P split, key a now on C) right after the
// aggregator looked up line 2's key: the lookup saw the old map.
type reshardingShards struct{ v uint64 }

func (r *reshardingShards) Locate(string) (string, string, uint64, bool) {
	id, ehk, v := "P", "0", r.v
	if r.v == 2 {
		id, ehk = "C", "1"
	}
	r.v = 2
	return id, ehk, v, true
}

// A key's lines stay in order across a reshard that happens while a line is being packed:
// the version that decides whether open aggregates are sealed is the one of the map that
// placed the line. (With the version asked for apart from the shard, a refresh in between
// packed line 2 for the child while line 1 stayed open for the parent, and the open-bytes
// bound sealed the child's record first.)
func TestShardedVersionAndShardFromOneMap(t *testing.T) {
	out := &collect{}
	a, err := NewSharded(KeyedOptions{Options: Options{MaxRecordBytes: 4096, MaxAge: time.Hour, Aggregate: true},
		Key: RegexKey(mustRE(`key=(\w+)`)), Shards: &reshardingShards{v: 1}, OpenBytes: 200}, out)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range []string{"key=a 1", "key=a 2 " + strings.Repeat("x", 300), "key=a 3"} {
		if err := a.Add(0, []byte(l), int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range out.recs {
		urs, _, _ := Deaggregate(r.Data, r.PartitionKey)
		for _, u := range urs {
			got = append(got, string(u.Data[:7]))
		}
	}
	if strings.Join(got, ",") != "key=a 1,key=a 2,key=a 3" {
		t.Errorf("lines in delivery order %v; want them as written", got)
	}
}
