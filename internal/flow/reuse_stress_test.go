package flow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/payload"
	"github.com/kinship-agent/kinship/shipper"
)

// stressLine is line id of the stress test's file: its id and bytes that follow from it, so
// that the receiver can tell a line that arrived changed. The bytes are random enough that
// the spool's compression leaves them about their size (drop_oldest must drop).
func stressLine(id int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
	b := fmt.Appendf(nil, "%08d ", id)
	r := rand.New(rand.NewPCG(uint64(id), 7))
	n := 40 + id%400
	if id%1500 == 1499 {
		n = 70<<10 + id%(40<<10) // a record of one line, sent plain
	}
	for range n {
		b = append(b, alphabet[r.IntN(len(alphabet))])
	}
	return b
}

// wireDestination is a destination whose requests take a while, as on a network: each Put
// notes a checksum of every record's bytes, holds them for a random time (a body being
// written), checks they did not change meanwhile, and answers with random failures (whole
// requests, single records) so that records are retried and acked out of order. It checks
// every line it accepts against the file's (aggregates whole, their MD5 right).
type wireDestination struct {
	maxRecords int           // per request (0: Kinesis's)
	maxDelay   time.Duration // a request takes up to this long

	mu    sync.Mutex
	rng   *rand.Rand
	seen  map[int]int
	wrong []string
	unzip payload.Decompressor // kinesis.compression
}

func (d *wireDestination) Limits() shipper.Limits {
	return shipper.Limits{MaxRecords: d.maxRecords}.WithDefaults()
}

func (d *wireDestination) bad(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.wrong) < 10 {
		d.wrong = append(d.wrong, fmt.Sprintf(format, args...))
	}
}

func (d *wireDestination) Put(_ context.Context, recs []shipper.Record) ([]error, error) {
	sums := make([]uint32, len(recs))
	for i := range recs {
		sums[i] = crc32.ChecksumIEEE(recs[i].Data)
	}
	d.mu.Lock()
	delay := time.Duration(d.rng.Int64N(int64(d.maxDelay)))
	whole := d.rng.IntN(10) == 0
	var results []error
	if d.rng.IntN(6) == 0 {
		results = make([]error, len(recs))
		for i := range results {
			if d.rng.IntN(3) == 0 {
				results[i] = &shipper.EntryError{Code: "InternalFailure", Message: "try again"}
			}
		}
	}
	d.mu.Unlock()
	time.Sleep(delay)
	for i := range recs {
		if crc32.ChecksumIEEE(recs[i].Data) != sums[i] {
			d.bad("a record's bytes changed while its request was on the wire")
		}
	}
	if whole {
		return nil, errors.New("connection reset by peer")
	}
	for i := range recs {
		if results != nil && results[i] != nil {
			continue
		}
		d.accept(recs[i])
	}
	return results, nil
}

func (d *wireDestination) accept(r shipper.Record) {
	data := r.Data
	d.mu.Lock()
	if out, ok := d.unzip.Decompress(data); ok {
		data = out
	}
	d.mu.Unlock()
	lines := [][]byte{data}
	if aggregator.HasMagic(data) {
		urs, err := aggregator.DecodeAggregate(data)
		if err != nil {
			d.bad("an aggregate does not decode: %v", err)
			return
		}
		lines = lines[:0]
		for _, u := range urs {
			lines = append(lines, u.Data)
		}
	}
	for _, l := range lines {
		id, err := strconv.Atoi(string(l[:min(8, len(l))]))
		if err != nil || !bytes.Equal(l, stressLine(id)) {
			d.bad("line %.20q... is not a line of the file", l)
			continue
		}
		d.mu.Lock()
		d.seen[id]++
		d.mu.Unlock()
	}
}

// poisonFreeBuffers overwrites the free frame buffers with garbage until stop is called: a
// buffer in the pool is nobody's, so a reader that still reads one after handing it back
// reads garbage at once, rather than only once the buffer carries the next aggregate.
func poisonFreeBuffers(f *Flow) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case b := <-f.bufs:
				b = b[:cap(b)]
				for i := range b {
					b[i] = 0xEE
				}
				select {
				case f.bufs <- b[:0]:
				default:
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// Frame buffers are recycled only once nothing reads them: with requests that take a
// while, fail whole or in part and are retried, acks out of order, commits writing frames
// in flight (backlog mode, short fsync interval) or handing them out only once durable
// (always), and drop_oldest deleting frames in flight, every line reaches the destination as
// it was read (all of them unless dropped), every aggregate whole, and no record changes
// while a request carries it.
func TestRecycledBuffersNeverChangeInFlight(t *testing.T) {
	const perWrite = 500
	for _, tc := range []struct {
		name, spool, compression string
		lines                    int
		maxRecords               int
		maxDelay                 time.Duration
		drops                    bool
	}{
		{"backlog", "write: backlog", "", 30000, 0, 6 * time.Millisecond, false},
		{"always", "write: always", "", 60000, 0, 6 * time.Millisecond, false},
		// Records compressed into buffers of their own (the aggregator's goes back at once).
		{"backlog zstd", "write: backlog", "zstd", 30000, 0, 6 * time.Millisecond, false},
		// A destination slower than the file grows: the spool fills and drops its oldest
		// segments, frames in flight among them.
		{"backlog drop_oldest", "write: backlog, max_bytes: 2MiB, segment_bytes: 256KiB, when_full: drop_oldest", "", 40000, 1, 40 * time.Millisecond, true},
		{"always drop_oldest", "write: always, max_bytes: 2MiB, segment_bytes: 256KiB, when_full: drop_oldest", "", 40000, 1, 40 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := t.TempDir()
			path := filepath.Join(logs, "app.log")
			compression := ""
			if tc.compression != "" {
				compression = ", compression: " + tc.compression
			}
			doc := fmt.Sprintf(`
flows:
  - name: t
    paths: [%q]
    start_at: beginning
    kinesis: {stream: s, max_in_flight: 3%s}
    batch: {max_bytes: 128KiB}
    spool: {%s, fsync_interval: 2ms}
`, filepath.Join(logs, "*.log"), compression, tc.spool)
			cfg, err := config.Parse("test.yaml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			dst := &wireDestination{maxRecords: tc.maxRecords, maxDelay: tc.maxDelay,
				rng: rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano()))), seen: map[int]int{}}
			defer dst.unzip.Close()
			f, err := New(cfg.Flows[0], Deps{Dir: t.TempDir(), Destination: dst})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			stopPoison := poisonFreeBuffers(f)
			ran := make(chan error, 1)
			go func() { ran <- f.Run(ctx, false) }()
			stopped := false
			stop := func() {
				if !stopped {
					stopped = true
					cancel()
					if err := <-ran; err != nil {
						t.Error(err)
					}
					stopPoison()
				}
			}
			defer stop()

			// Written as it is read, so that the destination keeps up with some records
			// (acknowledged before a commit) and not with others (written in flight).
			out, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			var chunk []byte
			lines := tc.lines
			for id := range lines {
				chunk = append(append(chunk, stressLine(id)...), '\n')
				if (id+1)%perWrite == 0 || id == lines-1 {
					if _, err := out.Write(chunk); err != nil {
						t.Fatal(err)
					}
					chunk = chunk[:0]
					time.Sleep(2 * time.Millisecond)
				}
			}
			// Until every line arrived, or (drops) the spool is drained and nothing moves.
			deadline := time.Now().Add(time.Minute)
			last, still := -1, 0
			for {
				dst.mu.Lock()
				seen, failed := len(dst.seen), len(dst.wrong) > 0
				dst.mu.Unlock()
				if seen == lines || failed {
					break
				}
				if seen == last && f.spool.AckedThrough() == f.spool.LastSeq() {
					still++
				} else {
					last, still = seen, 0
				}
				if tc.drops && still >= 50 {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%d lines never arrived", lines-seen)
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			stop()
			st := f.spool.Stats()
			t.Logf("%d frames, %d delivered before a commit, %d frame buffers allocated, %d lines arrived",
				f.spool.LastSeq(), st.Delivered, f.bufAllocs.Load(), len(dst.seen))
			dst.mu.Lock()
			defer dst.mu.Unlock()
			if len(dst.wrong) > 0 {
				t.Fatalf("%d+ defects, first: %s", len(dst.wrong), strings.Join(dst.wrong, "; "))
			}
			if tc.drops && len(dst.seen) == lines {
				t.Log("nothing was dropped: the spool never filled")
			}
		})
	}
}
