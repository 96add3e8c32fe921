package spool

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func (s *Spool) recover() error {
	dir := s.opts.Dir
	entries, err := s.fs.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("spool: open: %w", err)
	}
	var firsts []uint64
	nextSeq := uint64(1)
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".tmp"):
			if err := s.fs.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("spool: open: sweep %s: %w", name, err)
			}
			s.log.Info("spool: removed stale temp file", "file", name)
		case strings.HasSuffix(name, ".seg") && len(name) == 24:
			first, err := strconv.ParseUint(name[:20], 10, 64)
			if err != nil || first == 0 {
				s.log.Warn("spool: ignoring file with a segment-like name", "file", name)
				continue
			}
			firsts = append(firsts, first)
		}
	}
	slices.Sort(firsts)
	buf := make([]byte, readBufSize)

	// First every segment is scanned, and what recovery will destroy is worked out and
	// persisted (lostFile) before anything is cut: a crash in the middle of the cuts, or a
	// caller that fails before it has rolled its state back, must not make the loss vanish.
	scans := make([]segScan, 0, len(firsts))
	var lost []lostRange
	var maxAck, keptFirst uint64
	for i, first := range firsts {
		sc := segScan{first: first, path: filepath.Join(dir, segName(first))}
		newest := i == len(firsts)-1
		// Whatever this segment lost ends before the next segment starts.
		lastBound := uint64(math.MaxUint64)
		if !newest {
			lastBound = firsts[i+1] - 1
		}
		// Only sealed segments are resynchronised: every byte of them was fsynced before the
		// next segment was created, so bad bytes in them are damage. The newest segment may
		// end in writes a power loss tore out of order (a later page on disk, an earlier one
		// not): frames after bad bytes there may never have been durable, and keeping them
		// would let Replay move the caller's positions past the lost ones. It is cut at the
		// first bad frame, as a torn tail.
		var err error
		sc.res, sc.size, err = scanFile(s.fs, sc.path, buf, !newest)
		if err != nil {
			return fmt.Errorf("spool: open: segment %s: %w", filepath.Base(sc.path), err)
		}
		if sc.res.err != nil && !errors.Is(sc.res.err, errCorrupt) {
			return fmt.Errorf("spool: open: segment %s: %w", filepath.Base(sc.path), sc.res.err)
		}
		sc.setAside = sc.res.validEnd == 0 || sc.res.first != first
		switch {
		case sc.setAside:
			if sc.lostFrames, err = s.countLost(sc.path, segHeaderSize-8, sc.size, first-1, buf); err != nil {
				return err
			}
			if sc.lostFrames > 0 {
				lost = append(lost, lostRange{first, lastBound})
			}
		case sc.res.err != nil:
			if sc.lostFrames, err = s.countLost(sc.path, sc.res.validEnd, sc.size, sc.res.last, buf); err != nil {
				return err
			}
			if sc.lostFrames > 0 {
				lost = append(lost, lostRange{sc.res.last + 1, lastBound})
			}
		}
		if !sc.setAside {
			lost = append(lost, sc.res.gaps...)
			maxAck = max(maxAck, sc.res.ack)
			if keptFirst == 0 {
				keptFirst = first
			}
		}
		scans = append(scans, sc)
	}
	// The cursor as it will be (below): lost frames at or below it were delivered.
	acked := maxAck
	if keptFirst > 0 {
		acked = max(acked, keptFirst-1)
	}
	for _, r := range lost {
		if r.last > acked {
			if from := max(r.first, acked+1); s.recovery.FirstLost == 0 || from < s.recovery.FirstLost {
				s.recovery.FirstLost = from
			}
		}
	}
	if err := s.persistLost(acked); err != nil {
		return err
	}

	var maxSeq uint64
	for _, sc := range scans {
		path := sc.path
		maxSeq = max(maxSeq, sc.first)
		if sc.setAside {
			// A segment is renamed into place only with a complete header, so this is damage,
			// not a crash: set it aside whole.
			s.corrupt("spool: segment header invalid, set aside", path, 0, cmp.Or(sc.res.err, errors.New("first seq differs from name")),
				"lost_frames", sc.lostFrames, "lost_bytes", sc.size)
			if err := s.fs.Rename(path, path+".0.broken"); err != nil {
				return fmt.Errorf("spool: open: segment %s: %w", filepath.Base(path), err)
			}
			s.recovery.LostFrames += sc.lostFrames
			s.recovery.LostBytes += sc.size
			continue
		}
		res := sc.res
		for _, b := range res.skipped {
			// Counted in SpoolCorrupt by the reader, which skips the same bytes when it ships.
			s.log.Warn("spool: corrupt frames inside a segment; the frames after them are kept",
				"segment", filepath.Base(path), "offset", b.off, "bad_bytes", b.n, "err", b.err)
		}
		if res.err != nil {
			if err := s.cutTail(path, res.validEnd, sc.size, res.err, "lost_frames", sc.lostFrames); err != nil {
				return err
			}
			s.recovery.LostFrames += sc.lostFrames
			s.recovery.LostBytes += sc.size - res.validEnd
		}
		if n := len(s.segs); n > 0 && res.first <= s.segs[n-1].last {
			// A failed fsync rewrote frames into this segment and the older one could not be
			// cut back then (see the package doc): this copy is the one that was fsynced.
			if err := s.cutOverlap(s.segs[n-1], res.first, buf); err != nil {
				return err
			}
		}
		s.segs = append(s.segs, &segment{first: sc.first, last: res.last, end: res.validEnd, durEnd: res.validEnd, path: path})
		s.bytes += res.validEnd
		maxSeq = max(maxSeq, res.last+1)
	}
	nextSeq = max(nextSeq, maxSeq)
	if err := s.fs.SyncDir(dir); err != nil {
		return fmt.Errorf("spool: open: %w", err)
	}
	s.acked = acked
	if len(s.segs) > 0 {
		s.lastSeq = s.segs[len(s.segs)-1].last
	}
	s.m.SpoolLostFrames.Add(float64(s.recovery.LostFrames))
	s.m.SpoolLostBytes.Add(float64(s.recovery.LostBytes))
	if s.recovery != (Recovery{}) {
		s.log.Error("spool: recovery found frames destroyed on disk; the caller reads their lines again from the files",
			"dir", dir, "lost_frames", s.recovery.LostFrames, "lost_bytes", s.recovery.LostBytes, "first_lost_seq", s.recovery.FirstLost)
	}
	// Sequence numbers never go back, not even below a cut or set-aside segment, nor below
	// the cursor (frames at or below it are never shipped).
	nextSeq = max(nextSeq, s.acked+1)
	s.durable, s.ackDurable, s.ackWritten, s.rnext = s.lastSeq, s.acked, s.acked, s.acked+1
	if len(s.segs) == 0 || nextSeq > s.lastSeq+1 {
		s.lastSeq = nextSeq - 1
		s.durable = s.lastSeq
		return s.newSegmentLocked(nextSeq)
	}
	act := s.segs[len(s.segs)-1]
	f, err := s.fs.OpenFile(act.path, os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("spool: open: %w", err)
	}
	// A process killed while this was its active segment left the blocks it reserved past the
	// end (preallocLocked): give them back, as sealing would have (the file ends at act.end,
	// recovery cut anything after its last valid frame). Until a data frame reserves again,
	// nothing else would (stubs reserve nothing). Best effort, as at a seal.
	if err := f.Truncate(act.end); err != nil {
		s.log.Warn("spool: release preallocated blocks", "segment", filepath.Base(act.path), "err", err)
	}
	// What a crashed process left in the page cache becomes durable before it is handed out.
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("spool: open: segment %s: fsync: %w", filepath.Base(act.path), err)
	}
	act.f = f
	s.act = act
	s.log.Info("spool: opened", "dir", dir, "segments", len(s.segs), "bytes", s.bytes,
		"last_seq", s.lastSeq, "acked", s.acked)
	return nil
}

// segScan is what recovery's first pass found in one segment.
type segScan struct {
	first      uint64
	path       string
	res        scanResult
	size       int64
	setAside   bool   // the header is invalid: the file goes aside whole
	lostFrames uint64 // data frames in what is cut or set aside
}

// lostFile persists Recovery.FirstLost until the caller says it has rolled its state back
// (RecoveryHandled), so that neither a crash during recovery's cuts nor a caller failing
// before its rollback is durable makes the loss vanish: the next Open reports it again.
const lostFile = "LOST"

// persistLost merges the FirstLost left by an earlier Open that was not handled into this
// one's, drops it once the cursor has passed it (those frames were delivered), and writes
// the result before recovery cuts anything.
func (s *Spool) persistLost(acked uint64) error {
	path := filepath.Join(s.opts.Dir, lostFile)
	f, err := s.fs.Open(path)
	switch {
	case err == nil:
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		_ = f.Close()
		prev, perr := strconv.ParseUint(strings.TrimSpace(string(b[:n])), 10, 64)
		if perr == nil && prev > acked && (s.recovery.FirstLost == 0 || prev < s.recovery.FirstLost) {
			s.recovery.FirstLost = prev
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("spool: open: %w", err)
	}
	if s.recovery.FirstLost == 0 {
		if err == nil {
			if err := s.fs.Remove(path); err != nil {
				return fmt.Errorf("spool: open: %w", err)
			}
		}
		return nil
	}
	if err := writeFileAtomic(s.fs, s.opts.Dir, lostFile, []byte(strconv.FormatUint(s.recovery.FirstLost, 10)+"\n")); err != nil {
		return fmt.Errorf("spool: open: record lost frames: %w", err)
	}
	return nil
}

// RecoveryHandled tells the spool that the caller's state no longer claims anything
// Recovery reported lost (it is saved rolled back): the next Open stops reporting it.
func (s *Spool) RecoveryHandled() error {
	if s.recovery.FirstLost == 0 {
		return nil
	}
	if err := s.fs.Remove(filepath.Join(s.opts.Dir, lostFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: recovery handled: %w", err)
	}
	if err := s.fs.SyncDir(s.opts.Dir); err != nil {
		return fmt.Errorf("spool: recovery handled: %w", err)
	}
	return nil
}

// countLost opens path and counts the data frames in [from, end) that recovery is about to
// remove (see lostIn in format.go).
func (s *Spool) countLost(path string, from, end int64, last uint64, buf []byte) (uint64, error) {
	f, err := s.fs.Open(path)
	if err != nil {
		return 0, fmt.Errorf("spool: open: segment %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	frames, _ := lostIn(f, from, end, last, buf)
	return frames, nil
}

func scanFile(fsys fileSystem, path string, buf []byte, resync bool) (scanResult, int64, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return scanResult{}, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return scanResult{}, 0, err
	}
	return scanSegment(f, st.Size(), buf, resync), st.Size(), nil
}

// cutOverlap cuts prev before its first data frame with a seq >= first.
func (s *Spool) cutOverlap(prev *segment, first uint64, buf []byte) error {
	name := filepath.Base(prev.path)
	f, err := s.fs.Open(prev.path)
	if err != nil {
		return fmt.Errorf("spool: open: segment %s: %w", name, err)
	}
	fr := newFrameReader(f, segHeaderSize, prev.end, buf[:0])
	at, last := prev.end, prev.first-1
	for {
		off := fr.off
		typ, seq, _, err := fr.next(false)
		if errors.Is(err, errCorrupt) {
			// Bad bytes the scan stepped over: resync the same way, or cut at them.
			if found, _, rerr := fr.resync(off, last); rerr == nil && found {
				continue
			}
			at = off
			break
		}
		if err != nil {
			break // io.EOF
		}
		if holdsSeq(typ) && seq >= first {
			at = off
			break
		}
		if holdsSeq(typ) {
			last = seq
		}
	}
	_ = f.Close()
	if err := s.cutTail(prev.path, at, prev.end, fmt.Errorf("frames from seq %d are in the next segment: %w", first, errCorrupt)); err != nil {
		return err
	}
	s.bytes -= prev.end - at
	prev.end, prev.durEnd, prev.last = at, at, last
	return nil
}

// cutTail keeps a copy of path's bytes from validEnd on and truncates the file there.
func (s *Spool) cutTail(path string, validEnd, size int64, why error, attrs ...any) error {
	name := filepath.Base(path)
	f, err := s.fs.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("spool: open: segment %s: %w", name, err)
	}
	defer f.Close()
	tail := make([]byte, min(size-validEnd, maxBrokenCopy))
	if n, err := f.ReadAt(tail, validEnd); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("spool: open: segment %s: read tail: %w", name, err)
	} else {
		tail = tail[:n]
	}
	broken := fmt.Sprintf("%s.%d.broken", name, validEnd)
	if err := writeFileAtomic(s.fs, s.opts.Dir, broken, tail); err != nil {
		return fmt.Errorf("spool: open: segment %s: keep tail: %w", name, err)
	}
	if err := f.Truncate(validEnd); err != nil {
		return fmt.Errorf("spool: open: segment %s: truncate at %d: %w", name, validEnd, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("spool: open: segment %s: fsync: %w", name, err)
	}
	s.corrupt("spool: cut invalid tail", path, validEnd, why, append([]any{"cut_bytes", size - validEnd, "kept_in", broken}, attrs...)...)
	return nil
}

func (s *Spool) corrupt(msg, path string, off int64, err error, attrs ...any) {
	s.m.SpoolCorrupt.Inc()
	s.log.Warn(msg, append([]any{"segment", filepath.Base(path), "offset", off, "err", err}, attrs...)...)
}
