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
	// markSeq is, per durable file, the seq of the frame whose mark set its position (absent:
	// none did: a start position). It is saved with the position (seq in positions.json):
	// after spool damage it tells which positions came from lost frames (rollBackLost), and
	// once the destination acknowledged every frame up to it, every line before the position
	// is shipped (shipped.go). A position of unknown provenance (a snapshot written before
	// this was kept, a file resumed at a restored position) gets the spool's last seq, a
	// bound never too low.
	markSeq map[tailer.FileID]uint64
	pending []pendingMarks // appended frames not yet known durable, in seq order
	dirty   bool           // durable changed since the last save
	// savedSeq is the spool sequence the saved snapshot covers; putSeq the highest sequence
	// whose marks are in pending (or applied).
	savedSeq, putSeq uint64

	tails map[tailer.FileID]position // the tail prints last saved; checkpoint's own, no lock
	enc   positionsEncoder           // checkpoint's own too

	// retired are files the tailer closed (rotated away and read to their end, or truncated),
	// remembered until maxRetired newer ones push them out, so that `kinship status --file`
	// and delete_after_shipped can still tell whether their lines were all acknowledged. The
	// marks of their lines sealed after the close still reach them: closed keeps their sources
	// resolvable, and frames carry those marks outside the envelope (pendingMarks.retired),
	// so restore never brings a retired file's position back.
	retired map[tailer.FileID]retiredFile
	closed  map[uint32]*tailer.Source
	retires uint64 // retirements so far, for retiredFile.order
}

// retiredFile is what is kept of a file the tailer is done with: its last durable position
// and the seq of the last durable frame holding its lines.
type retiredFile struct {
	pos   position
	seq   uint64
	order uint64 // retirements counted: the lowest is forgotten first
}

// maxRetired bounds the retired files remembered (and saved in positions.json).
const maxRetired = 1024

type pendingMarks struct {
	seq     uint64
	marks   []position
	sources []uint32 // sources[i] is the tailer source marks[i] came from
	// retired are marks of closed sources: applied to retired files only, never carried in
	// the envelope (restore would bring the position back).
	retired []position
}

// drop moves the marks of source from what checkpoint applies to positions to what it
// applies to retired files (the frame on disk keeps them).
func (pm *pendingMarks) drop(source uint32) {
	j := 0
	for i, s := range pm.sources {
		if s != source {
			pm.sources[j], pm.marks[j] = s, pm.marks[i]
			j++
		} else {
			pm.retired = append(pm.retired, pm.marks[i])
		}
	}
	pm.sources, pm.marks = pm.sources[:j], pm.marks[:j]
}

func newPositions(path string) *positions {
	return &positions{path: path, sources: map[uint32]*tailer.Source{}, durable: map[tailer.FileID]position{},
		markSeq: map[tailer.FileID]uint64{}, retired: map[tailer.FileID]retiredFile{}, closed: map[uint32]*tailer.Source{}}
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
	for _, r := range pf.Retired {
		pos := r.position()
		p.retires++
		p.retired[pos.ID] = retiredFile{pos: pos, seq: r.Seq, order: p.retires}
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
	retired := make([]retiredFile, 0, len(p.retired))
	for _, r := range p.retired {
		retired = append(retired, r)
	}
	p.mu.Unlock()
	if err := savePositions(p.path, lastSeq, snapshot, seqs, retired); err != nil {
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
			continue
		}
		if _, known := p.markSeq[id]; !known && pos.Offset > 0 {
			p.markSeq[id] = lastSeq
		}
	}
	return restored
}

// open starts tracking src at offset.
func (p *positions) open(src *tailer.Source, offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sources[src.Index] = src
	if _, ok := p.retired[src.ID]; ok {
		// Tracked again (it came back at a matching path, or the inode was reused): the
		// live position speaks for it now.
		p.forgetRetired(src.ID)
	}
	if _, ok := p.markSeq[src.ID]; !ok && offset > 0 {
		// Resumed from a position whose frames may not all be acknowledged (a file rotated
		// while the agent was stopped, found again): every frame so far, a bound never too low.
		p.markSeq[src.ID] = p.putSeq
	}
	if cur, ok := p.durable[src.ID]; !ok || cur.Fingerprint != src.Fingerprint || cur.Offset != offset || cur.Path != src.Path {
		// The start position of a file is durable by definition (nothing of it was read);
		// saving it matters for start_at: end, whose skipped bytes must stay skipped.
		p.durable[src.ID] = position{ID: src.ID, Fingerprint: src.Fingerprint, Path: src.Path, Offset: offset}
		if offset == 0 {
			delete(p.markSeq, src.ID) // nothing read: no frame holds any of its lines
		}
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
	p.retires++
	r := retiredFile{pos: position{ID: src.ID, Fingerprint: src.Fingerprint, Path: src.Path}, order: p.retires}
	if cur, ok := p.durable[src.ID]; ok && cur.Fingerprint == src.Fingerprint {
		r.pos, r.seq = cur, p.markSeq[src.ID]
		delete(p.durable, src.ID)
		delete(p.markSeq, src.ID)
		p.dirty = true
	}
	p.closed[src.Index] = src
	p.retired[src.ID] = r
	p.trimRetired()
}

// trimRetired forgets the oldest retired files beyond maxRetired (by the order of their
// retirement), with their sources.
func (p *positions) trimRetired() {
	for len(p.retired) > maxRetired {
		var oldest tailer.FileID
		first := true
		for id, r := range p.retired {
			if first || r.order < p.retired[oldest].order {
				oldest, first = id, false
			}
		}
		p.forgetRetired(oldest)
	}
}

// forgetRetired drops a retired file and the sources that still resolve to it.
func (p *positions) forgetRetired(id tailer.FileID) {
	delete(p.retired, id)
	for idx, src := range p.closed {
		if src.ID == id {
			delete(p.closed, idx)
		}
	}
	p.dirty = true
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
			if c := p.closed[m.Source]; c != nil {
				pm.retired = append(pm.retired, position{ID: c.ID, Fingerprint: c.Fingerprint, Path: c.Path, Offset: m.Offset})
			}
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
		for _, m := range pm.retired {
			if r, ok := p.retired[m.ID]; ok && r.pos.Fingerprint == m.Fingerprint && m.Offset >= r.pos.Offset {
				r.pos.Offset, r.seq = m.Offset, pm.seq
				p.retired[m.ID] = r
			}
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
	retired := make([]retiredFile, 0, len(p.retired))
	for _, r := range p.retired {
		retired = append(retired, r)
	}
	p.dirty = false
	p.mu.Unlock()

	if p.tails == nil {
		p.tails = map[tailer.FileID]position{}
	}
	withTails(snapshot, p.tails)
	if err := p.enc.save(p.path, seq, snapshot, seqs, retired); err != nil {
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
