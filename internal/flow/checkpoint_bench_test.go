package flow

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/tailer"
)

// BenchmarkCheckpointTrickle is one checkpoint of a flow watching 10,000 files while 10 of
// them get a line each (bench/idle.sh's trickle row): the snapshot is saved whole, so its
// cost grows with the files watched, not with the lines.
func BenchmarkCheckpointTrickle(b *testing.B) {
	const files, busy = 10000, 10
	dir := b.TempDir()
	p := newPositions(filepath.Join(dir, "positions.json"))
	offsets := make([]int64, files)
	for i := range files {
		path := filepath.Join(dir, fmt.Sprintf("d%d/f%d.log", i/100, i%100))
		if i%100 == 0 {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		src := &tailer.Source{Index: uint32(i + 1), ID: tailer.FileID{Dev: 1, Ino: uint64(i + 1)},
			Fingerprint: tailer.Fingerprint{Len: 300, Sum: uint64(i)}, Path: path}
		p.open(src, 0)
		offsets[i] = 300
	}
	marks := make([]aggregator.Mark, 0, files)
	for i := range files {
		marks = append(marks, aggregator.Mark{Source: uint32(i + 1), Offset: offsets[i]})
	}
	seq := uint64(1)
	p.appended(seq, p.resolve(marks))
	if _, _, err := p.checkpoint(seq); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		marks = marks[:0]
		for j := range busy {
			i := j * (files / busy)
			offsets[i] += 100
			marks = append(marks, aggregator.Mark{Source: uint32(i + 1), Offset: offsets[i]})
		}
		seq++
		p.appended(seq, p.resolve(marks))
		if _, saved, err := p.checkpoint(seq); err != nil || !saved {
			b.Fatal(saved, err)
		}
	}
}
