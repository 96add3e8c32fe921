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
// its frames are durable, nothing of it stays in memory.
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
