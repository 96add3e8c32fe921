package flow

import (
	"path/filepath"
	"testing"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/tailer"
)

// entries is how many things the tracker holds in memory, whatever their kind.
func (p *positions) entries() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sources) + len(p.durable) + len(p.pending)
}

// A long-running agent sees many files come and go (rotation): once a file is closed and
// its frames are durable, nothing of it stays in the working maps (what status --file keeps
// of it, its retired entry, is bounded: TestPositionsBoundRetiredFiles).
func TestPositionsForgetClosedFiles(t *testing.T) {
	p := newPositions(filepath.Join(t.TempDir(), "positions.json"))
	for i := uint32(1); i <= 200; i++ {
		src := &tailer.Source{Index: i, ID: tailer.FileID{Dev: 1, Ino: uint64(i)}, Path: "/var/log/app.log"}
		p.open(src, 0)
		p.appended(uint64(i), p.resolve([]aggregator.Mark{{Source: i, Offset: 100}}))
		p.close(src)
		if _, _, err := p.checkpoint(uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.entries(); n != 0 {
		t.Fatalf("%d entries held after 200 files were opened, read, made durable and closed; want 0", n)
	}
}

// A truncated file gets a new source for the same file: marks of the old source that were
// in flight when it closed must not overwrite the new one's position (the new content would
// be skipped).
func TestPositionsIgnoreMarksOfAClosedSource(t *testing.T) {
	p := newPositions(filepath.Join(t.TempDir(), "positions.json"))
	id := tailer.FileID{Dev: 1, Ino: 7}
	old := &tailer.Source{Index: 1, ID: id, Fingerprint: tailer.Fingerprint{Len: 10, Sum: 1}, Path: "/var/log/a.log"}
	p.open(old, 0)
	p.appended(1, p.resolve([]aggregator.Mark{{Source: 1, Offset: 500}})) // in the spool, not durable
	inFlight := p.resolve([]aggregator.Mark{{Source: 1, Offset: 900}})    // resolved, not yet appended
	p.close(old)
	renewed := &tailer.Source{Index: 2, ID: id, Fingerprint: tailer.Fingerprint{Len: 10, Sum: 2}, Path: "/var/log/a.log"}
	p.open(renewed, 0)
	p.appended(2, inFlight)
	if _, _, err := p.checkpoint(2); err != nil {
		t.Fatal(err)
	}
	got, ok := p.position(id)
	if !ok || got.Offset != 0 || got.Fingerprint != renewed.Fingerprint {
		t.Fatalf("position after truncation = %+v (found %v), want the new content at 0", got, ok)
	}
}

// When spool recovery loses frames, the files they came from are rolled back to before
// them, so their lines are read again: never forward, never onto other content.
func TestPositionsRollBack(t *testing.T) {
	dir := t.TempDir()
	p := newPositions(filepath.Join(dir, "positions.json"))
	fp := tailer.Fingerprint{Len: 10, Sum: 1}
	a := &tailer.Source{Index: 1, ID: tailer.FileID{Dev: 1, Ino: 1}, Fingerprint: fp, Path: "/var/log/a.log"}
	b := &tailer.Source{Index: 2, ID: tailer.FileID{Dev: 1, Ino: 2}, Fingerprint: fp, Path: "/var/log/b.log"}
	p.open(a, 0)
	p.open(b, 0)
	p.appended(1, p.resolve([]aggregator.Mark{{Source: 1, Offset: 500}, {Source: 2, Offset: 50}}))
	if _, _, err := p.checkpoint(1); err != nil {
		t.Fatal(err)
	}
	p.rollBack([]position{
		{ID: a.ID, Fingerprint: fp, Path: a.Path, Offset: 200},                                   // back
		{ID: b.ID, Fingerprint: fp, Path: b.Path, Offset: 80},                                    // forward: no
		{ID: a.ID, Fingerprint: tailer.Fingerprint{Len: 10, Sum: 9}, Path: a.Path, Offset: 100},  // other content: no
		{ID: tailer.FileID{Dev: 1, Ino: 3}, Fingerprint: fp, Path: "/var/log/c.log", Offset: 10}, // unknown: no
	})
	if _, saved, err := p.checkpoint(1); err != nil || !saved {
		t.Fatalf("checkpoint after a roll-back: saved %v, %v", saved, err)
	}
	q := newPositions(p.path)
	if _, _, err := q.load(); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[tailer.FileID]int64{a.ID: 200, b.ID: 50} {
		if got, ok := q.position(id); !ok || got.Offset != want {
			t.Errorf("saved position of %v = %+v (found %v), want offset %d", id, got, ok, want)
		}
	}
	if _, ok := q.position(tailer.FileID{Dev: 1, Ino: 3}); ok {
		t.Error("a roll-back created a position")
	}
}
