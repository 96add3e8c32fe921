package flow

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/kinship-agent/kinship/internal/atomicfile"
	"github.com/kinship-agent/kinship/spool"
	"github.com/kinship-agent/kinship/tailer"
)

type position = tailer.Position

// positionsFile is the compacted snapshot of the positions carried by spool frames: every
// frame with Seq <= Seq is reflected in Files. The frames after Seq are still in the spool
// (the spool keeps them until told about this snapshot), so startup replays them on top.
type positionsFile struct {
	Version int             `json:"version"`
	Seq     uint64          `json:"seq"`
	Files   []savedPosition `json:"files"`
}

type savedPosition struct {
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	FPLen  uint32 `json:"fp_len"`
	FPSum  uint64 `json:"fp_sum"`
	Path   string `json:"path"`
	Offset int64  `json:"offset"`
}

func loadPositions(path string) (positionsFile, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return positionsFile{}, false, nil
	}
	if err != nil {
		return positionsFile{}, false, fmt.Errorf("flow: read positions %s: %w", path, err)
	}
	var pf positionsFile
	if err := json.Unmarshal(b, &pf); err != nil {
		return positionsFile{}, false, fmt.Errorf("flow: positions %s is corrupt (%w); move it away to re-read files from their stored spool state", path, err)
	}
	if pf.Version != 1 {
		return positionsFile{}, false, fmt.Errorf("flow: positions %s has version %d, this agent reads 1", path, pf.Version)
	}
	return pf, true, nil
}

func savePositions(path string, seq uint64, m map[tailer.FileID]position) error {
	pf := positionsFile{Version: 1, Seq: seq, Files: make([]savedPosition, 0, len(m))}
	for _, p := range m {
		pf.Files = append(pf.Files, savedPosition{Dev: p.ID.Dev, Ino: p.ID.Ino, FPLen: p.Fingerprint.Len,
			FPSum: p.Fingerprint.Sum, Path: p.Path, Offset: p.Offset})
	}
	sort.Slice(pf.Files, func(i, j int) bool { return pf.Files[i].Path < pf.Files[j].Path })
	b, err := json.MarshalIndent(pf, "", " ")
	if err != nil {
		return fmt.Errorf("flow: encode positions: %w", err)
	}
	return atomicfile.Write(path, b, 0o600)
}

func (s savedPosition) position() position {
	return position{ID: tailer.FileID{Dev: s.Dev, Ino: s.Ino},
		Fingerprint: tailer.Fingerprint{Len: s.FPLen, Sum: s.FPSum}, Path: s.Path, Offset: s.Offset}
}

// stillThere reports whether the file a stored position names still exists under its last
// known path with the same inode. Positions of files that are gone would otherwise be carried
// from snapshot to snapshot forever.
func stillThere(p position) bool {
	fi, err := os.Stat(p.Path)
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	return uint64(st.Dev) == p.ID.Dev && uint64(st.Ino) == p.ID.Ino
}

type pendingMarks struct {
	seq     uint64
	marks   []position
	sources []uint32 // sources[i] is the tailer source marks[i] came from
}

func (f *Flow) positionsPath() string { return filepath.Join(f.dir, "positions.json") }

// restore rebuilds the durable positions: the last snapshot, then the marks of every frame
// after it. It reports whether this is the flow's first start (no state at all).
func (f *Flow) restore() (restored []position, firstStart bool, err error) {
	pf, found, err := loadPositions(f.positionsPath())
	if err != nil {
		return nil, false, err
	}
	for _, s := range pf.Files {
		p := s.position()
		f.durable[p.ID] = p
	}
	replayed := 0
	err = f.spool.Replay(pf.Seq+1, func(fr spool.Frame) error {
		e, err := decodeEnvelope(fr.Payload, true)
		if err != nil {
			// A frame the spool accepted (CRC valid) but we cannot parse was written by an
			// incompatible agent; its positions are lost, its data is still shipped raw.
			f.log.Warn("spool frame with unreadable positions", "seq", fr.Seq, "err", err)
			return nil
		}
		for _, m := range e.Marks {
			f.durable[m.ID] = m
		}
		replayed++
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("flow %s: replay spool: %w", f.cfg.Name, err)
	}
	f.savedSeq = pf.Seq
	f.putSeq = f.spool.LastSeq()
	f.spool.Checkpoint(pf.Seq)
	firstStart = !found && f.spool.LastSeq() == 0
	for id, p := range f.durable {
		restored = append(restored, p)
		if !stillThere(p) {
			delete(f.durable, id)
		}
	}
	f.log.Info("flow restored", "files", len(restored), "snapshot_seq", pf.Seq, "frames_replayed", replayed,
		"first_start", firstStart, "spool_unacked", f.spool.Stats().Unacked)
	return restored, firstStart, nil
}

// checkpoint applies the marks of frames that became durable and saves the positions file
// when anything changed; then the spool may delete segments up to the saved sequence.
func (f *Flow) checkpoint() {
	durableSeq := f.spool.Durable()
	f.mu.Lock()
	n := 0
	for _, pm := range f.pending {
		if pm.seq > durableSeq {
			break
		}
		for i, m := range pm.marks {
			if !f.closed[pm.sources[i]] {
				f.durable[m.ID] = m
			}
		}
		n++
	}
	if n > 0 {
		f.pending = append(f.pending[:0], f.pending[n:]...)
		f.dirty = true
	}
	// A frame can be durable before put recorded its marks (the spool syncs in the
	// background); such a frame must stay after the snapshot so that replay still sees it.
	seq := min(durableSeq, f.putSeq)
	if !f.dirty && seq == f.savedSeq {
		f.mu.Unlock()
		return
	}
	snapshot := make(map[tailer.FileID]position, len(f.durable))
	for id, p := range f.durable {
		snapshot[id] = p
	}
	f.dirty = false
	f.mu.Unlock()

	if err := savePositions(f.positionsPath(), seq, snapshot); err != nil {
		f.log.Error("saving positions failed; will retry", "err", err)
		f.mu.Lock()
		f.dirty = true
		f.mu.Unlock()
		return
	}
	f.mu.Lock()
	f.savedSeq = seq
	f.mu.Unlock()
	f.spool.Checkpoint(seq)
}
