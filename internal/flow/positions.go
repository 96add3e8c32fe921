package flow

import (
	"fmt"
	"maps"
	"sync"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/tailer"
)

// positions tracks how far each file's lines are durable in the spool, and keeps
// positions.json, its compacted snapshot (see doc.go for the invariant).
//
// A position moves through three stages. The aggregator seals a record with its marks (per
// source, the low watermark: every line before it is in this record or an earlier one);
// resolve turns the marks into file positions, and appended files them as pending under the
// frame's spool sequence. checkpoint applies the pending marks of every frame the spool
// reports durable, in sequence order, and saves the snapshot when something changed. At
// start, load, replayed and restored rebuild the same state from the snapshot and the frames
// after it.
//
// Every method is safe for concurrent use: the tailer's goroutine calls open and close, the
// aggregator's delivery goroutine resolve and appended, the checkpoint loop checkpoint, and
// Status files. The lock is held for map work only; checkpoint writes the file outside it.
// checkpoint itself is called by one goroutine at a time.
type positions struct {
	path string // positions.json

	mu sync.Mutex
	// sources are the open sources by index: what the aggregator's marks refer to. Indexes
	// are never reused, so a mark whose source is not here belongs to a closed one.
	sources map[uint32]*tailer.Source
	durable map[tailer.FileID]position // positions whose lines are all in durable frames
	markSeq map[tailer.FileID]uint64   // the frame whose mark set durable[id] (absent: none did)
	pending []pendingMarks             // appended frames not yet known durable, in seq order
	dirty   bool                       // durable changed since the last save
	// savedSeq is the spool sequence the saved snapshot covers; putSeq the highest sequence
	// whose marks are in pending (or applied).
	savedSeq, putSeq uint64

	tails map[tailer.FileID]position // the tail prints last saved; checkpoint's own, no lock
}

type pendingMarks struct {
	seq     uint64
	marks   []position
	sources []uint32 // sources[i] is the tailer source marks[i] came from
}

// drop removes the marks of source from what checkpoint will apply (the frame on disk keeps
// them).
func (pm *pendingMarks) drop(source uint32) {
	j := 0
	for i, s := range pm.sources {
		if s != source {
			pm.sources[j], pm.marks[j] = s, pm.marks[i]
			j++
		}
	}
	pm.sources, pm.marks = pm.sources[:j], pm.marks[:j]
}

func newPositions(path string) *positions {
	return &positions{path: path, sources: map[uint32]*tailer.Source{}, durable: map[tailer.FileID]position{},
		markSeq: map[tailer.FileID]uint64{}}
}

// load reads the snapshot. It returns the sequence the snapshot covers (the frames after it
// are to be passed to replayed) and whether a snapshot existed.
func (p *positions) load() (seq uint64, found bool, err error) {
	pf, found, err := loadPositions(p.path)
	if err != nil {
		return 0, false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range pf.Files {
		pos := s.position()
		p.durable[pos.ID] = pos
		if s.Seq != 0 {
			p.markSeq[pos.ID] = s.Seq
		}
	}
	p.savedSeq = pf.Seq
	return pf.Seq, found, nil
}

// replayed applies the marks of frame seq, found in the spool after the snapshot. Frames
// come in sequence order, so each file ends at the mark of the last frame that names it.
func (p *positions) replayed(seq uint64, marks []position) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range marks {
		p.durable[m.ID] = m
		p.markSeq[m.ID] = seq
	}
}

// seqMark is a file's position as the mark of frame seq left it.
type seqMark struct {
	seq uint64
	pos position
}

// rollBackLost makes the positions claim nothing the spool lost to damage (issue 13.5): lost
// is the first seq above the acknowledged cursor that recovery destroyed, snapSeq the seq of
// the snapshot loaded, before the latest mark of each file among the frames before lost still
// on disk (collected only when lost <= snapSeq; restore applies no mark at or after lost). A
// file whose snapshot position came from a frame at or after lost goes back to its mark in
// before, or to the start of the file when no earlier frame is left to say (they were
// acknowledged and deleted): its lines are read again, duplicates rather than loss. The
// result is saved at once under lastSeq; it returns how many files moved and how many of
// those went back to their start.
func (p *positions) rollBackLost(lost, snapSeq, lastSeq uint64, before map[tailer.FileID]seqMark) (rolled, toStart int, err error) {
	p.mu.Lock()
	if lost <= snapSeq {
		for id, pos := range p.durable {
			if p.markSeq[id] < lost {
				continue // no lost frame moved it (0: a start position, or an older snapshot)
			}
			if b, ok := before[id]; ok {
				p.durable[id], p.markSeq[id] = b.pos, b.seq
			} else {
				pos.Offset = 0
				p.durable[id] = pos
				delete(p.markSeq, id)
				toStart++
			}
			rolled++
		}
		for id, b := range before {
			if _, ok := p.durable[id]; !ok {
				// Closed since (rotated away, say): its lines in the lost frames may still be
				// in the rotated file, which the tailer matches by identity.
				p.durable[id], p.markSeq[id] = b.pos, b.seq
				rolled++
			}
		}
	}
	snapshot := maps.Clone(p.durable)
	seqs := maps.Clone(p.markSeq)
	p.mu.Unlock()
	if err := savePositions(p.path, lastSeq, snapshot, seqs); err != nil {
		return 0, 0, fmt.Errorf("save positions rolled back after spool damage: %w", err)
	}
	p.mu.Lock()
	p.savedSeq = lastSeq
	p.mu.Unlock()
	return rolled, toStart, nil
}

// restored ends the restore: lastSeq is the spool's last sequence, whose marks are all
// applied now. It returns every restored position for the tailer (which tells a file that
// is gone from one rotated away) and forgets, for the next snapshots, files no longer under
// their path.
func (p *positions) restored(lastSeq uint64, stillThere func(position) bool) []position {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.putSeq = lastSeq
	restored := make([]position, 0, len(p.durable))
	for id, pos := range p.durable {
		restored = append(restored, pos)
		if !stillThere(pos) {
			delete(p.durable, id)
		}
	}
	return restored
}

// open starts tracking src at offset.
func (p *positions) open(src *tailer.Source, offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sources[src.Index] = src
	if cur, ok := p.durable[src.ID]; !ok || cur.Fingerprint != src.Fingerprint || cur.Offset != offset || cur.Path != src.Path {
		// The start position of a file is durable by definition (nothing of it was read);
		// saving it matters for start_at: end, whose skipped bytes must stay skipped.
		p.durable[src.ID] = position{ID: src.ID, Fingerprint: src.Fingerprint, Path: src.Path, Offset: offset}
		delete(p.markSeq, src.ID)
		p.dirty = true
	}
}

// close stops tracking src: the tailer is done with it (deleted or rotated away and read to
// its end, or truncated), so its position is forgotten, and so are its pending marks: applied
// later, they would bring the position back (and, for a truncated file, put it past the new
// content's start). Nothing of src is kept, however many files come and go.
func (p *positions) close(src *tailer.Source) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.sources, src.Index)
	for i := range p.pending {
		p.pending[i].drop(src.Index)
	}
	if cur, ok := p.durable[src.ID]; ok && cur.Fingerprint == src.Fingerprint {
		delete(p.durable, src.ID)
		delete(p.markSeq, src.ID)
		p.dirty = true
	}
}

// resolve turns a sealed record's marks into file positions, to be carried in its frame.
// Marks of closed sources are left out.
func (p *positions) resolve(marks []aggregator.Mark) pendingMarks {
	pm := pendingMarks{marks: make([]position, 0, len(marks)), sources: make([]uint32, 0, len(marks))}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range marks {
		src := p.sources[m.Source]
		if src == nil {
			continue
		}
		pm.marks = append(pm.marks, position{ID: src.ID, Fingerprint: src.Fingerprint, Path: src.Path, Offset: m.Offset})
		pm.sources = append(pm.sources, m.Source)
	}
	return pm
}

// appended files pm as the marks of the frame seq, which the spool now holds (not yet
// durably). Frames are appended in sequence order, by one goroutine. Marks of sources closed
// since resolve are dropped, as close dropped those already pending.
func (p *positions) appended(seq uint64, pm pendingMarks) {
	pm.seq = seq
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; i < len(pm.sources); {
		if p.sources[pm.sources[i]] == nil {
			pm.drop(pm.sources[i])
			continue
		}
		i++
	}
	p.pending = append(p.pending, pm)
	p.putSeq = seq
}

// skipped files the marks of lines that were not shipped (processing dropped them) under
// the last appended frame: every line before them is in that frame or an earlier one. They
// are not in any frame on disk, so a crash before the next snapshot reads those lines again
// (and drops them again); nothing is sent twice.
func (p *positions) skipped(pm pendingMarks) {
	p.mu.Lock()
	seq := p.putSeq
	p.mu.Unlock()
	p.appended(seq, pm)
}

// checkpoint applies the marks of every frame up to durableSeq and saves the snapshot when
// anything changed. It returns the sequence the saved snapshot covers (the spool may delete
// acknowledged frames up to it) and whether it saved. A failed save is retried by the next
// checkpoint.
func (p *positions) checkpoint(durableSeq uint64) (seq uint64, saved bool, err error) {
	p.mu.Lock()
	n := 0
	for _, pm := range p.pending {
		if pm.seq > durableSeq {
			break
		}
		for _, m := range pm.marks {
			p.durable[m.ID] = m
			p.markSeq[m.ID] = pm.seq
		}
		n++
	}
	if n > 0 {
		p.pending = append(p.pending[:0], p.pending[n:]...)
		p.dirty = true
	}
	// A frame can be durable before put recorded its marks (the spool syncs in the
	// background); such a frame must stay after the snapshot so that replay still sees it.
	seq = min(durableSeq, p.putSeq)
	if !p.dirty && seq == p.savedSeq {
		p.mu.Unlock()
		return seq, false, nil
	}
	snapshot := maps.Clone(p.durable)
	seqs := maps.Clone(p.markSeq)
	p.dirty = false
	p.mu.Unlock()

	if p.tails == nil {
		p.tails = map[tailer.FileID]position{}
	}
	withTails(snapshot, p.tails)
	if err := savePositions(p.path, seq, snapshot, seqs); err != nil {
		p.mu.Lock()
		p.dirty = true
		p.mu.Unlock()
		return 0, false, fmt.Errorf("flow: save positions: %w", err)
	}
	p.mu.Lock()
	p.savedSeq = seq
	p.mu.Unlock()
	return seq, true, nil
}

// files returns a copy of the durable positions.
func (p *positions) files() []position {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]position, 0, len(p.durable))
	for _, pos := range p.durable {
		out = append(out, pos)
	}
	return out
}

// position returns the durable position of a file.
func (p *positions) position(id tailer.FileID) (position, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pos, ok := p.durable[id]
	return pos, ok
}
