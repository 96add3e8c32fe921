package flow

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
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
	var e positionsEncoder
	return e.save(path, seq, m, markSeqs, retired)
}

// positionsEncoder writes positions.json. The checkpoint loop keeps one and reuses its
// buffers: with many files watched the snapshot is megabytes, rewritten whenever a position
// moves (each second while lines arrive).
type positionsEncoder struct {
	buf     bytes.Buffer
	files   []savedPosition
	retired []savedRetired
	// order is the files of the last save sorted by path. The set of files seldom changes
	// between saves, and sorting thousands of paths that share a long prefix was half of
	// what was left of a save's CPU.
	order []orderedFile
}

type orderedFile struct {
	id   tailer.FileID
	path string
}

// save writes compact JSON, one file per line (greppable by path): the indented form, a
// line per field, cost more than twice the CPU to produce (bench/idle.sh's trickle row).
func (e *positionsEncoder) save(path string, seq uint64, m map[tailer.FileID]position, markSeqs map[tailer.FileID]uint64, retired []retiredFile) error {
	e.retired = e.retired[:0]
	for _, r := range retired {
		p := r.pos
		e.retired = append(e.retired, savedRetired{savedPosition: savedPosition{Dev: p.ID.Dev, Ino: p.ID.Ino,
			FPLen: p.Fingerprint.Len, FPSum: p.Fingerprint.Sum, Path: p.Path, Offset: p.Offset}, Seq: r.seq})
	}
	slices.SortFunc(e.retired, func(a, b savedRetired) int { return cmp.Compare(a.Seq, b.Seq) })
	if !e.appendFiles(m, markSeqs) {
		e.order = e.order[:0]
		for id, p := range m {
			e.order = append(e.order, orderedFile{id: id, path: p.Path})
		}
		slices.SortFunc(e.order, func(a, b orderedFile) int { return strings.Compare(a.path, b.path) })
		if !e.appendFiles(m, markSeqs) {
			return fmt.Errorf("flow: encode positions: %d files, %d sorted", len(m), len(e.order))
		}
	}

	// The layout of positionsFile, written by hand so that each entry gets its own line.
	e.buf.Reset()
	fmt.Fprintf(&e.buf, "{\"version\":1,\"seq\":%d,\"files\":[", seq)
	if err := encodeLines(&e.buf, e.files); err != nil {
		return err
	}
	e.buf.WriteString("]")
	if len(e.retired) > 0 {
		e.buf.WriteString(",\"retired\":[")
		if err := encodeLines(&e.buf, e.retired); err != nil {
			return err
		}
		e.buf.WriteString("]")
	}
	e.buf.WriteString("}\n")
	return atomicfile.Write(path, e.buf.Bytes(), 0o600)
}

// appendFiles fills files with the positions of m in the order of the last save, and
// reports false when that order no longer fits m (files came, left or moved).
func (e *positionsEncoder) appendFiles(m map[tailer.FileID]position, markSeqs map[tailer.FileID]uint64) bool {
	e.files = e.files[:0]
	if len(e.order) != len(m) {
		return false
	}
	for _, o := range e.order {
		p, ok := m[o.id]
		if !ok || p.Path != o.path {
			return false
		}
		e.files = append(e.files, savedPosition{Dev: p.ID.Dev, Ino: p.ID.Ino, FPLen: p.Fingerprint.Len,
			FPSum: p.Fingerprint.Sum, Path: p.Path, Offset: p.Offset, TailLen: p.Tail.Len, TailSum: p.Tail.Sum, Seq: markSeqs[p.ID]})
	}
	return true
}

// encodeLines appends the JSON of each entry on a line of its own, comma-separated.
func encodeLines[T any](buf *bytes.Buffer, entries []T) error {
	enc := json.NewEncoder(buf)
	for i := range entries {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
		if err := enc.Encode(&entries[i]); err != nil {
			return fmt.Errorf("flow: encode positions: %w", err)
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
	}
	if len(entries) > 0 {
		buf.WriteByte('\n')
	}
	return nil
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
			// Most files did not move since the last save: no map writes for them, which
			// with thousands of files watched was a good part of each checkpoint.
			if p.Tail != c.Tail {
				p.Tail = c.Tail
				snapshot[id] = p
			}
			continue
		}
		if p.Tail.Len == 0 {
			p.Tail = tailer.TailPrint(p.Path, p.ID, p.Offset)
			snapshot[id] = p
		}
		cache[id] = p
	}
	// Every file of the snapshot is in the cache now: more entries means some left.
	if len(cache) > len(snapshot) {
		for id := range cache {
			if _, ok := snapshot[id]; !ok {
				delete(cache, id)
			}
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
