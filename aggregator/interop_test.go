package aggregator

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// The interop tests run AWS Labs' aws-kinesis-agg (an independent implementation of the
// format, from internal/testenv/node) against ours, both ways. They fail, never skip, when node or the
// npm packages are missing: a silent skip would pass CI without testing compatibility.

type jsRecord struct {
	PK   string `json:"pk"`
	EHK  string `json:"ehk,omitempty"`
	Data []byte `json:"data"` // base64 in JSON, as the Node side writes it
}

func runInterop(t *testing.T, mode string, in []jsRecord) [][]byte {
	t.Helper()
	dir := kinesalitetest.NodeDir(t)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "aws-kinesis-agg")); err != nil {
		t.Fatalf("aws-kinesis-agg is not installed (%v); run `npm ci --prefix internal/testenv/node`", err)
	}
	var stdin bytes.Buffer
	enc := json.NewEncoder(&stdin)
	for _, r := range in {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("node", filepath.Join("testdata", "kpl_interop.js"), dir, mode)
	cmd.Stdin = &stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node kpl_interop.js %s: %v\n%s", mode, err, stderr.Bytes())
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestInteropTheyReadOurs packs lines with our packer and has aws-kinesis-agg's deaggregator
// (checksums verified) read every record.
func TestInteropTheyReadOurs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	c := &collector{}
	a, err := New(Options{MaxRecordBytes: 64 << 10, Aggregate: true, MaxAge: time.Hour}, c)
	if err != nil {
		t.Fatal(err)
	}
	in := variedLines(rng, 2000, 64<<10-32, 3)
	for _, l := range in {
		if err := a.Add(l.src, l.data, l.end); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var recs []jsRecord
	for _, r := range c.records() {
		recs = append(recs, jsRecord{PK: r.PartitionKey, Data: r.Data})
	}
	out := runInterop(t, "deagg", recs)
	if len(out) != len(recs) {
		t.Fatalf("node answered %d records for %d", len(out), len(recs))
	}
	i := 0
	for ri, line := range out {
		var res struct {
			Error   string     `json:"error"`
			Records []jsRecord `json:"records"`
		}
		if err := json.Unmarshal(line, &res); err != nil {
			t.Fatalf("record %d: %v: %s", ri, err, line)
		}
		if res.Error != "" {
			t.Fatalf("record %d: aws-kinesis-agg: %s", ri, res.Error)
		}
		if len(res.Records) != c.recs[ri].UserRecords {
			t.Fatalf("record %d: aws-kinesis-agg found %d user records, we packed %d", ri, len(res.Records), c.recs[ri].UserRecords)
		}
		for _, u := range res.Records {
			want := in[i].data[:min(len(in[i].data), 64<<10-32)]
			if !bytes.Equal(u.Data, want) || u.PK != recs[ri].PK {
				t.Fatalf("record %d, line %d: aws-kinesis-agg read %d bytes with key %q, want %d bytes with %q",
					ri, i, len(u.Data), u.PK, len(want), recs[ri].PK)
			}
			i++
		}
	}
	if i != len(in) {
		t.Fatalf("aws-kinesis-agg read %d lines, we added %d", i, len(in))
	}
}

// TestInteropWeReadTheirs has aws-kinesis-agg build aggregates (several partition and
// explicit hash keys, so both tables have several entries) and decodes them strictly.
func TestInteropWeReadTheirs(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var in []jsRecord
	for i := range 3000 {
		d := make([]byte, rng.IntN(2000))
		for j := range d {
			d[j] = byte(rng.Uint32())
		}
		r := jsRecord{PK: fmt.Sprintf("pk-%d", rng.IntN(5)), Data: d}
		if i%3 == 0 {
			r.EHK = fmt.Sprint(rng.Uint64())
		}
		in = append(in, r)
	}
	out := runInterop(t, "agg", in)
	if len(out) < 2 {
		t.Fatalf("aws-kinesis-agg built %d aggregates; want several (the test feeds it > 1 MiB)", len(out))
	}
	i := 0
	for ai, line := range out {
		var agg jsRecord
		if err := json.Unmarshal(line, &agg); err != nil {
			t.Fatal(err)
		}
		if len(agg.Data)+len(agg.PK) > 1<<20 {
			t.Errorf("aggregate %d: %d bytes", ai, len(agg.Data)+len(agg.PK))
		}
		users, err := DecodeAggregate(agg.Data)
		if err != nil {
			t.Fatalf("aggregate %d: %v", ai, err)
		}
		for _, u := range users {
			w := in[i]
			// aws-kinesis-agg only stores an explicit hash key index when the record has one.
			if u.PartitionKey != w.PK || u.ExplicitHashKey != w.EHK || !bytes.Equal(u.Data, w.Data) {
				t.Fatalf("aggregate %d, user record %d: got key %q ehk %q %d bytes, want %q %q %d bytes",
					ai, i, u.PartitionKey, u.ExplicitHashKey, len(u.Data), w.PK, w.EHK, len(w.Data))
			}
			i++
		}
	}
	if i != len(in) {
		t.Fatalf("decoded %d user records, aws-kinesis-agg was given %d", i, len(in))
	}
}
