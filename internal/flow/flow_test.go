package flow

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/shipper"
	"github.com/kinship-agent/kinship/tailer"
)

func testFlow(t *testing.T, dir string) *Flow {
	t.Helper()
	return openFlow(t, `
flows:
  - name: t
    paths: ["/nonexistent/*.log"]
    discard: {}
    spool: {fsync_interval: 1h}
`, Deps{Dir: dir, Destination: shipper.Discard{}})
}

// openFlow builds the first flow of yaml with deps and restores it, as New and Run would;
// its spool is closed at the end of the test.
func openFlow(t *testing.T, yaml string, deps Deps) *Flow {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(cfg.Flows[0], deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.spool.Close() })
	if _, _, err := f.restore(); err != nil {
		t.Fatal(err)
	}
	return f
}

// realSource creates a file and returns a source with its identity: restore forgets
// positions of files that no longer exist.
func realSource(t *testing.T, path string) *tailer.Source {
	t.Helper()
	if err := os.WriteFile(path, []byte("0123456789012345678901234567890123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return &tailer.Source{Index: 1, ID: tailer.FileID{Dev: uint64(st.Dev), Ino: st.Ino}, Path: path}
}

func savedOffset(t *testing.T, dir string, id tailer.FileID) (int64, bool) {
	t.Helper()
	pf, _, err := loadPositions(filepath.Join(dir, "positions.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pf.Files {
		if p.Dev == id.Dev && p.Ino == id.Ino {
			return p.Offset, true
		}
	}
	return 0, false
}

// The contract at the heart of the agent: a file position is saved only once every line
// before it is durable in the spool.
func TestPositionsNeverAheadOfDurableData(t *testing.T) {
	dir := t.TempDir()
	f := testFlow(t, dir)
	src := &tailer.Source{Index: 1, ID: tailer.FileID{Dev: 1, Ino: 42}, Path: "/var/log/a.log"}
	sk := sink{f: f}
	sk.Open(src, 0)
	out := output{f: f, ctx: context.Background()}
	if err := out.Put(&aggregator.Record{PartitionKey: "k", Data: []byte("line"), UserRecords: 1,
		Marks: []aggregator.Mark{{Source: 1, Offset: 5}}}); err != nil {
		t.Fatal(err)
	}
	f.checkpoint()
	if off, _ := savedOffset(t, dir, src.ID); off != 0 {
		t.Fatalf("position %d saved while its frame is not durable", off)
	}
	if err := f.spool.Sync(); err != nil {
		t.Fatal(err)
	}
	f.checkpoint()
	if off, ok := savedOffset(t, dir, src.ID); !ok || off != 5 {
		t.Fatalf("position %d (found %v) after the frame became durable, want 5", off, ok)
	}
}

// After a crash, positions come back from the frames written after the last snapshot.
func TestRestoreReplaysFramesAfterTheSnapshot(t *testing.T) {
	dir := t.TempDir()
	f := testFlow(t, dir)
	src := realSource(t, filepath.Join(t.TempDir(), "b.log"))
	sink{f: f}.Open(src, 0)
	out := output{f: f, ctx: context.Background()}
	for i, off := range []int64{10, 20, 30} {
		if err := out.Put(&aggregator.Record{PartitionKey: "k", Data: []byte("x"), UserRecords: 1,
			Marks: []aggregator.Mark{{Source: 1, Offset: off}}}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := f.spool.Sync(); err != nil {
				t.Fatal(err)
			}
			f.checkpoint() // snapshot at offset 10
		}
	}
	if err := f.spool.Sync(); err != nil {
		t.Fatal(err)
	}
	// Crash: no checkpoint after the last frames; the spool is closed as the OS would.
	if err := f.spool.Close(); err != nil {
		t.Fatal(err)
	}
	g := testFlow(t, dir)
	got, ok := g.pos.position(src.ID)
	if !ok || got.Offset != 30 {
		t.Fatalf("restored position %+v (found %v), want offset 30 from the replayed frames", got, ok)
	}
}

// Positions of files that are gone are not carried from snapshot to snapshot forever.
func TestRestoreForgetsFilesThatAreGone(t *testing.T) {
	dir := t.TempDir()
	f := testFlow(t, dir)
	path := filepath.Join(t.TempDir(), "gone.log")
	src := realSource(t, path)
	sink{f: f}.Open(src, 40)
	f.checkpoint()
	if err := f.spool.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	g := testFlow(t, dir)
	if _, ok := g.pos.position(src.ID); ok {
		t.Fatal("position of a deleted file kept")
	}
}

// brokenDestination answers with the wrong number of results: a programming error the
// shipper cannot retry away.
type brokenDestination struct{}

func (brokenDestination) Put(_ context.Context, recs []shipper.Record) ([]error, error) {
	return make([]error, len(recs)+1), nil
}
func (brokenDestination) Limits() shipper.Limits { return shipper.Limits{} }

// A shipper that stops on its own stops the flow, instead of leaving the tailer filling a
// spool that nothing drains.
func TestShipperFailureStopsTheFlow(t *testing.T) {
	dir := t.TempDir()
	logs := t.TempDir()
	if err := os.WriteFile(filepath.Join(logs, "a.log"), []byte("one\ntwo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("test.yaml", []byte("flows:\n  - name: t\n    paths: [\""+logs+"/*.log\"]\n    discard: {}\n    batch: {max_age: 10ms}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(cfg.Flows[0], Deps{Dir: dir, Destination: brokenDestination{}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(context.Background(), false) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "results") {
			t.Fatalf("Run returned %v, want the shipper's error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the flow kept running after its shipper stopped")
	}
}
