package flow

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/spool"
	"github.com/kinship-agent/kinship/tailer"
)

// FileShipStatus answers "is every line of this file acknowledged by this flow's
// destination?" (`kinship status --file`, delete_after_shipped).
//
// The rule: the flow knows the file by identity (device, inode and the fingerprint of its
// first bytes, so a file replaced or rewritten under the same path is another file); every
// line before its durable position is in the spool, and that position is the file's size;
// the bytes there end with a newline (a partial last line may still be written to: not
// shipped); and every spool frame up to the last one carrying a mark for the file is
// acknowledged (marks are low watermarks: every line before a mark is in its frame or an
// earlier one, and the spool acknowledges in sequence order).
type FileShipStatus struct {
	Flow    string `json:"flow"`
	Path    string `json:"path"`
	Shipped bool   `json:"shipped"`
	// Reason is one of the ShipReason constants.
	Reason string `json:"reason"`
	Size   int64  `json:"size"`
	// Position: every line before it is durable in the spool (-1: the flow does not know
	// the file).
	Position int64 `json:"position"`
	// Acked: every line before it is acknowledged, as far as the state on disk still
	// tells (a lower bound; 0 when it does not).
	Acked int64 `json:"acked"`
	// LeftBytes are the bytes not known to be acknowledged: Size - Acked.
	LeftBytes int64 `json:"left_bytes"`
	// UnackedFrames are the spool frames holding lines of the file that the destination has
	// not acknowledged yet (from the state on disk only).
	UnackedFrames int    `json:"unacked_frames,omitempty"`
	Retired       bool   `json:"retired,omitempty"` // the tailer is done with it (rotated away, read to its end)
	Error         string `json:"error,omitempty"`
}

// Why a file is or is not shipped.
const (
	ShipReasonShipped   = "shipped"
	ShipReasonNotRead   = "not_read"     // bytes after the durable position: not read yet (or not yet in the spool)
	ShipReasonPartial   = "partial_line" // read to its end, but the last line has no newline yet
	ShipReasonUnacked   = "unacked"      // read and in the spool, not yet acknowledged by the destination
	ShipReasonUnknown   = "not_tracked"  // this flow has no position for this file (not matched, or not seen yet)
	ShipReasonTruncated = "truncated"    // the file is shorter than its position: rewritten in place
	ShipReasonError     = "error"        // the file cannot be read
)

// shipEvidence is what a flow's state says about one file.
type shipEvidence struct {
	known    bool
	retired  bool
	position int64  // every line before it is durable in the spool
	lastSeq  uint64 // the last frame holding lines before position (0: none needed)
	acked    uint64 // the spool's acknowledged cursor
	ackedPos int64  // a lower bound of the acknowledged offset
	unacked  int    // frames carrying its marks after acked (on-disk reading only)
}

// judge applies the rule to a file of size bytes; lastByte reads the byte at an offset.
func judge(flowName, path string, size int64, lastByte func(off int64) (byte, error), ev shipEvidence) FileShipStatus {
	st := FileShipStatus{Flow: flowName, Path: path, Size: size, Position: -1, Retired: ev.retired,
		UnackedFrames: ev.unacked}
	if ev.known {
		st.Position = ev.position
		st.Acked = min(max(0, ev.ackedPos), size)
	}
	st.LeftBytes = size - st.Acked
	switch {
	case size == 0:
		st.Shipped, st.Reason, st.LeftBytes = true, ShipReasonShipped, 0 // nothing to ship
	case !ev.known:
		st.Reason = ShipReasonUnknown
	case ev.position > size:
		st.Reason, st.Acked, st.LeftBytes = ShipReasonTruncated, 0, size
	case ev.position < size:
		st.Reason = ShipReasonNotRead
	default:
		b, err := lastByte(size - 1)
		switch {
		case err != nil:
			st.Reason, st.Error = ShipReasonError, err.Error()
		case b != '\n':
			st.Reason = ShipReasonPartial
		case ev.lastSeq > ev.acked:
			st.Reason = ShipReasonUnacked
		default:
			st.Shipped, st.Reason, st.Acked, st.LeftBytes = true, ShipReasonShipped, size, 0
		}
	}
	return st
}

// openedFile is a file opened to be judged: its identity and size from the descriptor, so
// that the fingerprint and the last byte are read from the very file that was stated.
type openedFile struct {
	fd   *os.File
	id   tailer.FileID
	size int64
}

func openForShip(path string) (*openedFile, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := fd.Stat()
	if err != nil {
		_ = fd.Close()
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		_ = fd.Close()
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return &openedFile{fd: fd, id: tailer.FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}, size: fi.Size()}, nil
}

func (o *openedFile) close() { _ = o.fd.Close() }

func (o *openedFile) byteAt(off int64) (byte, error) {
	var b [1]byte
	if _, err := o.fd.ReadAt(b[:], off); err != nil {
		return 0, fmt.Errorf("read %s: %w", o.fd.Name(), err)
	}
	return b[0], nil
}

// matches reports whether p describes this file: same identity, and its first bytes hash
// as p's fingerprint says (the tailer's FNV-64a of the first Len bytes).
func (o *openedFile) matches(p position) bool {
	if p.ID != o.id {
		return false
	}
	fp := p.Fingerprint
	if fp.Len == 0 {
		return true
	}
	if o.size < int64(fp.Len) {
		return false
	}
	b := make([]byte, fp.Len)
	if _, err := o.fd.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return false
	}
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64() == fp.Sum
}

func errorStatus(flowName, path string, err error) FileShipStatus {
	return FileShipStatus{Flow: flowName, Path: path, Reason: ShipReasonError, Position: -1, Size: -1, Error: err.Error()}
}

// FileShipped judges the file now at path against the running flow's state.
func (f *Flow) FileShipped(path string) FileShipStatus {
	o, err := openForShip(path)
	if err != nil {
		return errorStatus(f.cfg.Name, path, err)
	}
	defer o.close()
	return judge(f.cfg.Name, path, o.size, o.byteAt, f.evidence(o))
}

func (f *Flow) evidence(o *openedFile) shipEvidence {
	ev := shipEvidence{acked: f.spool.AckedThrough()}
	pos, seq, retired, ok := f.pos.lookup(o.id)
	if !ok || !o.matches(pos) {
		return ev
	}
	ev.known, ev.retired, ev.position, ev.lastSeq = true, retired, pos.Offset, seq
	if seq <= ev.acked {
		ev.ackedPos = pos.Offset
	}
	return ev
}

// lookup returns the position the flow keeps for a file, live or retired, with the seq of
// the last durable frame holding its lines.
func (p *positions) lookup(id tailer.FileID) (pos position, seq uint64, retired, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pos, ok := p.durable[id]; ok {
		return pos, p.markSeq[id], false, true
	}
	if r, ok := p.retired[id]; ok {
		return r.pos, r.seq, true, true
	}
	return position{}, 0, false, false
}

// ReadFileShipped judges the file now at path against a flow's state directory, read-only
// (with or without a running agent): positions.json, then the marks of every spool frame
// still on disk, as restore replays them, and the spool's acknowledged cursor. While the
// agent runs, the answer may lag by a checkpoint interval, never ahead of the truth.
func ReadFileShipped(name, dir, path string) FileShipStatus {
	o, err := openForShip(path)
	if err != nil {
		return errorStatus(name, path, err)
	}
	defer o.close()
	ev, err := diskEvidence(dir, o)
	if err != nil {
		st := errorStatus(name, path, err)
		st.Size = o.size
		return st
	}
	return judge(name, path, o.size, o.byteAt, ev)
}

func diskEvidence(dir string, o *openedFile) (shipEvidence, error) {
	var ev shipEvidence
	pf, _, err := loadPositions(filepath.Join(dir, "positions.json"))
	if err != nil {
		return ev, err
	}
	var snapshotPos int64 = -1
	for _, s := range pf.Files {
		if p := s.position(); o.matches(p) {
			ev.known, snapshotPos = true, p.Offset
		}
	}
	var retiredPos int64 = -1
	for _, r := range pf.Retired {
		if p := r.position(); o.matches(p) {
			ev.known, ev.retired, retiredPos, ev.lastSeq = true, true, p.Offset, r.Seq
		}
	}
	type mark struct {
		seq    uint64
		offset int64
	}
	var marks []mark
	// As restore: the frames after the snapshot for the position, and every frame not
	// acknowledged (all still on disk) for the marks that are not shipped yet.
	from := func(b spool.Backlog) uint64 { return min(pf.Seq, b.AckedThrough) + 1 }
	b, err := spool.InspectFrames(filepath.Join(dir, "spool"), from, func(fr spool.Frame) error {
		e, err := decodeEnvelope(fr.Payload, true)
		if err != nil {
			return nil // written by an incompatible agent: restore skips its marks too
		}
		for _, m := range e.Marks {
			if o.matches(m) {
				marks = append(marks, mark{fr.Seq, m.Offset})
			}
		}
		return nil
	})
	if err != nil {
		return ev, err
	}
	ev.acked = b.AckedThrough
	// The position: the snapshot, then the marks of the frames after it, in order (as
	// restore replays them); a retired file's is kept outside the envelopes.
	live, ackedPos := snapshotPos, int64(-1)
	for _, m := range marks {
		ev.known = true
		if m.seq > pf.Seq {
			live = m.offset
		}
		ev.lastSeq = max(ev.lastSeq, m.seq)
		if m.seq <= ev.acked {
			ackedPos = m.offset
		} else {
			ev.unacked++
		}
	}
	ev.position = max(live, retiredPos)
	switch {
	case ev.lastSeq <= ev.acked:
		ackedPos = ev.position // every frame holding its lines is acknowledged
	case pf.Seq <= ev.acked:
		ackedPos = max(ackedPos, snapshotPos) // the snapshot holds only acknowledged frames
	}
	ev.ackedPos = ackedPos
	return ev, nil
}

// Reads reports whether a flow's patterns take path (absolute and clean): a paths pattern
// matches it and no exclude pattern matches it or its base name, as the tailer decides.
func Reads(cfg *config.Flow, path string) bool {
	for _, e := range cfg.Exclude {
		if m, _ := doublestar.PathMatch(e, path); m {
			return false
		}
		if m, _ := doublestar.Match(e, filepath.Base(path)); m {
			return false
		}
	}
	for _, p := range cfg.Paths {
		if m, _ := doublestar.PathMatch(p, path); m {
			return true
		}
	}
	return false
}
