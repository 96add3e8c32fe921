package flow

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/kacheckpoint"
	"github.com/kinship-agent/kinship/internal/kacheckpoint/kacheckpointtest"
	"github.com/kinship-agent/kinship/shipper"
	"github.com/kinship-agent/kinship/spool"
	"github.com/kinship-agent/kinship/tailer"
)

type recordingDestination struct {
	mu   sync.Mutex
	data []string
}

func (d *recordingDestination) Limits() shipper.Limits { return shipper.Limits{}.WithDefaults() }

func (d *recordingDestination) Put(_ context.Context, recs []shipper.Record) ([]error, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range recs {
		d.data = append(d.data, string(r.Data))
	}
	return make([]error, len(recs)), nil
}

// A flow's first start resumes each file where the Kinesis Agent's checkpoint says it had
// sent up to: nothing before it is sent again, nothing after it is skipped. Of the files
// without a checkpoint, the one modified after the checkpointed file is read from its start,
// the older one not at all, whatever start_at says (as the Kinesis Agent would restart). A
// later start has positions of its own and imports nothing.
func TestFirstStartResumesFromImportedCheckpoints(t *testing.T) {
	logs := t.TempDir()
	pattern := filepath.Join(logs, "*.log")
	cfg, err := config.Parse("test.yaml", []byte(`flows:
  - name: app
    paths: ["`+pattern+`"]
    start_at: beginning
    kinesis: {stream: s, aggregate: false}
`))
	if err != nil {
		t.Fatal(err)
	}
	fc := cfg.Flows[0]
	a, older, newer := filepath.Join(logs, "a.log"), filepath.Join(logs, "older.log"), filepath.Join(logs, "newer.log")
	// Longer than the tailer's fingerprint, so the imported fingerprint must be the tailer's.
	sent := "sent by the Kinesis Agent " + strings.Repeat("x", 2000) + "\n"
	if err := os.WriteFile(a, []byte(sent+"written while no agent ran\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, text := range map[string]string{older: "rotated before the checkpoint\n", newer: "created after the checkpoint\n"} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	checkpointed := time.Now().Add(-time.Minute)
	for path, mtime := range map[string]time.Time{a: checkpointed, older: checkpointed.Add(-time.Hour), newer: checkpointed.Add(time.Second)} {
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(t.TempDir(), "checkpoints")
	kacheckpointtest.Write(t, db, "", kacheckpointtest.Checkpoint(t, "kinesis:s:"+pattern, a, int64(len(sent))))

	calls := 0
	importer := func() []tailer.Position {
		calls++
		cps, err := kacheckpoint.Read(db)
		if err != nil {
			t.Error(err)
			return nil
		}
		return kacheckpoint.PlanFlow(fc, cps, time.Now(), 7*24*time.Hour).Positions
	}
	state := t.TempDir()
	run := func() []string {
		dst := &recordingDestination{}
		f, err := New(fc, Deps{Dir: state, Destination: dst, ImportPositions: importer})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := f.Run(ctx, true); err != nil {
			t.Fatal(err)
		}
		return dst.data
	}
	first := run()
	sort.Strings(first)
	if got, want := first, []string{"created after the checkpoint", "written while no agent ran"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("first start sent %q, want %q", got, want)
	}
	if calls != 1 {
		t.Fatalf("import asked %d times at the first start", calls)
	}
	if _, err := os.Stat(filepath.Join(state, "positions.json")); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(a, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("later\n")
	_ = f.Close()
	if got, want := run(), []string{"later"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("second start sent %q, want %q", got, want)
	}
	if calls != 1 {
		t.Fatalf("import asked again at a later start (%d calls)", calls)
	}
}

// import-checkpoints writes positions for a flow that never ran, refuses one that did
// unless forced, and refuses while an agent holds the flow's spool.
func TestImportPositionsCommandRules(t *testing.T) {
	cfg, err := config.Parse("test.yaml", []byte("flows:\n  - {name: t, paths: [\"/nonexistent/*.log\"], discard: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	fc := cfg.Flows[0]
	dir := t.TempDir()
	p1 := tailer.Position{ID: tailer.FileID{Dev: 1, Ino: 2}, Fingerprint: tailer.Fingerprint{Len: 3, Sum: 4}, Path: "/nonexistent/a.log", Offset: 5}
	if err := ImportPositions(fc, dir, []tailer.Position{p1}, false); err != nil {
		t.Fatal(err)
	}
	if off, ok := savedOffset(t, dir, p1.ID); !ok || off != 5 {
		t.Fatalf("saved %d %v", off, ok)
	}
	p2 := p1
	p2.Offset = 9
	if err := ImportPositions(fc, dir, []tailer.Position{p2}, false); !errors.Is(err, ErrHasState) {
		t.Fatalf("second import: %v, want ErrHasState", err)
	}
	if err := ImportPositions(fc, dir, []tailer.Position{p2}, true); err != nil {
		t.Fatal(err)
	}
	if off, _ := savedOffset(t, dir, p1.ID); off != 9 {
		t.Fatalf("forced import saved %d", off)
	}

	running, err := New(fc, Deps{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer running.spool.Close()
	if err := ImportPositions(fc, dir, []tailer.Position{p1}, true); !errors.Is(err, spool.ErrLocked) {
		t.Fatalf("import while the flow runs: %v, want spool.ErrLocked", err)
	}
}
