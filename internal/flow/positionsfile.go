package flow

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"syscall"

	"github.com/kinship-agent/kinship/internal/atomicfile"
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
	// Retired are files the tailer is done with (rotated away, read to their end), with the
	// seq of the last frame holding their lines: what `kinship status --file` needs to say
	// they are shipped once the destination acknowledged that frame. Absent in older files.
	Retired []savedRetired `json:"retired,omitempty"`
}

type savedRetired struct {
	savedPosition
	Seq uint64 `json:"seq"`
}

type savedPosition struct {
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	FPLen  uint32 `json:"fp_len"`
	FPSum  uint64 `json:"fp_sum"`
	Path   string `json:"path"`
	Offset int64  `json:"offset"`
	// The tail print (tailer.Position.Tail): a hash of the bytes just before offset, so a
	// file rewritten with the same first KiB is read again from 0. Absent in older files.
	TailLen uint32 `json:"tail_len,omitempty"`
	TailSum uint64 `json:"tail_sum,omitempty"`
	// Seq is the spool frame whose mark set Offset (0: no frame did: a start position, or a
	// snapshot written before this field). After spool damage it tells which positions came
	// from frames that are gone (see positions.rollBackLost).
	Seq uint64 `json:"seq,omitempty"`
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

func savePositions(path string, seq uint64, m map[tailer.FileID]position, markSeqs map[tailer.FileID]uint64, retired []retiredFile) error {
	pf := positionsFile{Version: 1, Seq: seq, Files: make([]savedPosition, 0, len(m))}
	for _, r := range retired {
		p := r.pos
		pf.Retired = append(pf.Retired, savedRetired{savedPosition: savedPosition{Dev: p.ID.Dev, Ino: p.ID.Ino,
			FPLen: p.Fingerprint.Len, FPSum: p.Fingerprint.Sum, Path: p.Path, Offset: p.Offset}, Seq: r.seq})
	}
	sort.Slice(pf.Retired, func(i, j int) bool { return pf.Retired[i].Seq < pf.Retired[j].Seq })
	for _, p := range m {
		pf.Files = append(pf.Files, savedPosition{Dev: p.ID.Dev, Ino: p.ID.Ino, FPLen: p.Fingerprint.Len,
			FPSum: p.Fingerprint.Sum, Path: p.Path, Offset: p.Offset, TailLen: p.Tail.Len, TailSum: p.Tail.Sum, Seq: markSeqs[p.ID]})
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
		Fingerprint: tailer.Fingerprint{Len: s.FPLen, Sum: s.FPSum}, Path: s.Path, Offset: s.Offset,
		Tail: tailer.Fingerprint{Len: s.TailLen, Sum: s.TailSum}}
}

// withTails gives each position the tail print of its offset, taken from the file (once per
// offset: cache keeps the last one of each file). Used by the checkpoint goroutine only.
func withTails(snapshot map[tailer.FileID]position, cache map[tailer.FileID]position) {
	for id, p := range snapshot {
		if c, ok := cache[id]; ok && c.Offset == p.Offset && c.Fingerprint == p.Fingerprint && c.Path == p.Path {
			p.Tail = c.Tail
		} else if p.Tail.Len == 0 {
			p.Tail = tailer.TailPrint(p.Path, p.ID, p.Offset)
		}
		snapshot[id] = p
		cache[id] = p
	}
	for id := range cache {
		if _, ok := snapshot[id]; !ok {
			delete(cache, id)
		}
	}
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
