package flow

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/shipper"
)

// collectingDestination counts every line that arrived.
type collectingDestination struct {
	mu   sync.Mutex
	seen map[string]int
}

func (d *collectingDestination) Put(ctx context.Context, recs []shipper.Record) ([]error, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range recs {
		users, _, _ := aggregator.Deaggregate(r.Data, r.PartitionKey)
		for _, u := range users {
			d.seen[string(u.Data)]++
		}
	}
	return nil, nil
}

func (*collectingDestination) Limits() shipper.Limits { return shipper.Limits{}.WithDefaults() }

// count returns how many distinct lines arrived, and how many arrived more than once
// (counting each extra copy).
func (d *collectingDestination) count() (lines, dups int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.seen {
		dups += c - 1
	}
	return len(d.seen), dups
}

func (d *collectingDestination) dupsWithPrefix(prefix string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for l, c := range d.seen {
		if strings.HasPrefix(l, prefix) {
			n += c - 1
		}
	}
	return n
}

// Damage in the newest spool segment (random bytes in its second frame, a length field
// pointing far past the file, an invalid header) while the destination is down: recovery
// cuts frames whose positions were already saved. Every line is still in the file, so every
// line must arrive after the restart (issue 13.5): the positions roll back to the frames that
// survived, and the lines of the lost ones are read again.
func TestSpoolDamageInNewestSegmentLosesNoLine(t *testing.T) {
	eachWriteMode(t, testSpoolDamageInNewestSegmentLosesNoLine)
}

func testSpoolDamageInNewestSegmentLosesNoLine(t *testing.T, mode string) {
	const lines = 3000
	damages := []struct {
		name     string
		damage   func(t *testing.T, b []byte)
		segBytes string
	}{
		{"random bytes in frame 2", func(t *testing.T, b []byte) {
			off := frame2(t, b)
			copy(b[off+40:], "\x13\x37\xca\xfe\xba\xbe\x00\xff")
		}, ""},
		{"huge length field in frame 2", func(t *testing.T, b []byte) {
			binary.LittleEndian.PutUint32(b[frame2(t, b)+4:], 0xfffffff0)
		}, ""},
		{"bad header", func(t *testing.T, b []byte) { b[2] ^= 0xff }, ""},
		// No frame before the damage is left to say where the file was: read it again whole.
		{"bad header of the only segment", func(t *testing.T, b []byte) { b[2] ^= 0xff }, "64MiB"},
	}
	for _, tc := range damages {
		t.Run(tc.name, func(t *testing.T) {
			logs, state := t.TempDir(), t.TempDir()
			var sb strings.Builder
			for i := range lines {
				fmt.Fprintf(&sb, "%d %s\n", i, strings.Repeat("x", 60+i%40))
			}
			log := filepath.Join(logs, "a.log")
			if err := os.WriteFile(log, []byte(sb.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse("test.yaml", fmt.Appendf(nil, `flows:
  - {name: a, paths: [%q], start_at: beginning, discard: {}, batch: {max_bytes: 8KiB, max_age: 10ms},
     spool: {segment_bytes: %s, fsync_interval: 5ms, write: %s}}
`, log, cmp.Or(tc.segBytes, "64KiB"), mode))
			if err != nil {
				t.Fatal(err)
			}
			deps := Deps{Dir: state, CheckpointInterval: 10 * time.Millisecond,
				Destination: gatedDestination{gate: make(chan struct{}), lines: new(atomic.Int64)}}
			// Phase 1: the destination is down; everything is read, spooled, positions saved.
			runUntil(t, cfg.Flows[0], deps, "every line spooled and its position saved", func(*Flow) bool {
				pf, _, err := loadPositions(filepath.Join(state, "positions.json"))
				return err == nil && len(pf.Files) == 1 && pf.Files[0].Offset == int64(sb.Len())
			})

			segs, _ := filepath.Glob(filepath.Join(state, "spool", "*.seg"))
			if len(segs) < 2 && tc.segBytes == "" {
				t.Fatalf("%d segments, want the newest after a sealed one", len(segs))
			}
			newest := segs[len(segs)-1]
			b, err := os.ReadFile(newest)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, b)
			if err := os.WriteFile(newest, b, 0o600); err != nil {
				t.Fatal(err)
			}

			// The process dies after the spool's recovery cut the damage and before the flow
			// rolled its positions back: the next start must still know.
			crashed, err := New(cfg.Flows[0], deps)
			if err != nil {
				t.Fatal(err)
			}
			if st := crashed.Status().Spool; st.LostFrames == 0 || st.LostBytes == 0 {
				t.Fatalf("the damage is not in the flow's status: %+v", st)
			}
			if err := crashed.spool.Close(); err != nil {
				t.Fatal(err)
			}

			// Phase 2: the destination is back; every line must arrive.
			dest := &collectingDestination{seen: map[string]int{}}
			deps.Destination = dest
			runUntil(t, cfg.Flows[0], deps, "every line delivered", func(f *Flow) bool {
				if f.SpoolRecovery().FirstLost == 0 {
					t.Fatalf("the damage is not in the flow's status: %+v", f.SpoolRecovery())
				}
				if ok, reason := f.Healthy(time.Now(), time.Hour); ok || !strings.Contains(reason, "lost") {
					t.Fatalf("healthy %v (%q) after the spool lost frames at start", ok, reason)
				}
				n, _ := dest.count()
				return n == lines
			}, func() string { n, _ := dest.count(); return fmt.Sprintf("%d of %d lines arrived", n, lines) })
		})
	}
}

// frame2 returns the offset of the second frame of a segment.
func frame2(t *testing.T, seg []byte) int {
	t.Helper()
	const segHeader, frameHeader = 32, 24
	n := int(binary.LittleEndian.Uint32(seg[segHeader+4:]))
	off := segHeader + frameHeader + (n+7)/8*8
	if off+frameHeader > len(seg) {
		t.Fatalf("segment of %d bytes has no second frame", len(seg))
	}
	return off
}

// runUntil runs a flow until cond holds (checked every 10 ms, for 30 s at most), then stops
// it and waits for Run to return.
func runUntil(t *testing.T, fc config.Flow, deps Deps, what string, cond func(*Flow) bool, detail ...func() string) {
	t.Helper()
	f, err := New(fc, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, false) }()
	deadline := time.Now().Add(30 * time.Second)
	ok := false
	for !ok && time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("Run returned before %s: %v", what, err)
		case <-time.After(10 * time.Millisecond):
		}
		ok = cond(f)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if !ok {
		msg := ""
		for _, d := range detail {
			msg = d()
		}
		t.Fatalf("timed out waiting for %s %s", what, msg)
	}
}

// Only the files whose positions came from lost frames roll back: a file whose lines are all
// in frames before the damage is not read again (rolling every file back would re-ship every
// quiet file the agent watches). spool.write: always, so that acknowledged frames fill and
// roll segments as the test needs (in backlog mode they leave only stubs).
func TestSpoolDamageRollsBackOnlyTheFilesItTouched(t *testing.T) {
	logs, state := t.TempDir(), t.TempDir()
	write := func(name string, from, to int) {
		f, err := os.OpenFile(filepath.Join(logs, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for i := from; i < to; i++ {
			fmt.Fprintf(f, "%s %d %s\n", name, i, strings.Repeat("y", 80))
		}
	}
	write("quiet.log", 0, 1000)
	write("busy.log", 0, 1000)
	cfg, err := config.Parse("test.yaml", fmt.Appendf(nil, `flows:
  - {name: a, paths: [%q], start_at: beginning, discard: {}, batch: {max_bytes: 8KiB, max_age: 10ms},
     spool: {segment_bytes: 64KiB, fsync_interval: 5ms, write: always}}
`, filepath.Join(logs, "*.log")))
	if err != nil {
		t.Fatal(err)
	}
	covered := func(*Flow) bool {
		pf, _, err := loadPositions(filepath.Join(state, "positions.json"))
		if err != nil || len(pf.Files) != 2 {
			return false
		}
		for _, p := range pf.Files {
			if fi, err := os.Stat(p.Path); err != nil || fi.Size() != p.Offset {
				return false
			}
		}
		return true
	}
	// Both files are shipped and acknowledged: the spool deletes their frames.
	dest := &collectingDestination{seen: map[string]int{}}
	deps := Deps{Dir: state, CheckpointInterval: 10 * time.Millisecond, Destination: dest}
	runUntil(t, cfg.Flows[0], deps, "both files shipped", func(f *Flow) bool {
		n, _ := dest.count()
		return covered(f) && n == 2000 && f.spool.Stats().Unacked == 0
	})
	// busy.log goes on and is shipped too, until the segments that held quiet.log's frames
	// are acknowledged and deleted.
	shipped, _ := filepath.Glob(filepath.Join(state, "spool", "*.seg"))
	write("busy.log", 1000, 2000)
	runUntil(t, cfg.Flows[0], deps, "quiet.log's frames deleted", func(f *Flow) bool {
		for _, p := range shipped {
			if _, err := os.Stat(p); err == nil {
				return false
			}
		}
		n, _ := dest.count()
		return covered(f) && n == 3000
	})
	// The destination is down and only busy.log goes on.
	deps.Destination = gatedDestination{gate: make(chan struct{}), lines: new(atomic.Int64)}
	write("busy.log", 2000, 4000)
	runUntil(t, cfg.Flows[0], deps, "busy.log spooled", covered)

	segs, _ := filepath.Glob(filepath.Join(state, "spool", "*.seg"))
	newest := segs[len(segs)-1]
	b, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[32+40:], "\x13\x37\xca\xfe") // the newest segment's first frame
	if err := os.WriteFile(newest, b, 0o600); err != nil {
		t.Fatal(err)
	}

	deps.Destination = dest
	runUntil(t, cfg.Flows[0], deps, "every line delivered", func(*Flow) bool {
		n, _ := dest.count()
		return n == 5000
	}, func() string { n, _ := dest.count(); return fmt.Sprintf("%d of 5000 lines arrived", n) })
	if d := dest.dupsWithPrefix("quiet.log"); d != 0 {
		t.Errorf("quiet.log, untouched by the damage, was read again: %d duplicate lines", d)
	}
}
