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

// When spool recovery loses frames whose marks the snapshot holds, only the files those
// frames moved go back: to their mark in the last surviving frame, or to their start when
// none survives. A file no lost frame moved keeps its position.
func TestPositionsRollBackLost(t *testing.T) {
	dir := t.TempDir()
	p := newPositions(filepath.Join(dir, "positions.json"))
	fp := tailer.Fingerprint{Len: 10, Sum: 1}
	src := func(i uint32, name string) *tailer.Source {
		return &tailer.Source{Index: i, ID: tailer.FileID{Dev: 1, Ino: uint64(i)}, Fingerprint: fp, Path: "/var/log/" + name}
	}
	a, b, c := src(1, "a.log"), src(2, "b.log"), src(3, "c.log")
	for _, s := range []*tailer.Source{a, b, c} {
		p.open(s, 0)
	}
	p.appended(1, p.resolve([]aggregator.Mark{{Source: 1, Offset: 100}, {Source: 3, Offset: 30}}))
	p.appended(2, p.resolve([]aggregator.Mark{{Source: 1, Offset: 200}}))
	p.appended(3, p.resolve([]aggregator.Mark{{Source: 1, Offset: 300}, {Source: 2, Offset: 50}}))
	if _, _, err := p.checkpoint(3); err != nil {
		t.Fatal(err)
	}
	// Frame 3 was lost; frames 1 and 2 survive (frame 1 says c is at 30, frame 2 that a is at 200).
	before := map[tailer.FileID]seqMark{
		a.ID: {seq: 2, pos: position{ID: a.ID, Fingerprint: fp, Path: a.Path, Offset: 200}},
		c.ID: {seq: 1, pos: position{ID: c.ID, Fingerprint: fp, Path: c.Path, Offset: 30}},
	}
	rolled, toStart, err := p.rollBackLost(3, 3, 3, before)
	if err != nil || rolled != 2 || toStart != 1 {
		t.Fatalf("rolled %d, to start %d, %v; want 2 (a back to 200, b to 0), 1", rolled, toStart, err)
	}
	q := newPositions(p.path)
	if _, _, err := q.load(); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[tailer.FileID]int64{a.ID: 200, b.ID: 0, c.ID: 30} {
		if got, ok := q.position(id); !ok || got.Offset != want {
			t.Errorf("saved position of %v = %+v (found %v), want offset %d", id, got, ok, want)
		}
	}
}
