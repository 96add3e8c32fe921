package tailer

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"
)

// file is one tracked identity. Owned by Run.
type file struct {
	src  *Source
	path string   // current matching path (src.Path is where tracking started)
	fd   *os.File // nil while closed for idleness
	off  int64    // bytes consumed: lines emitted plus held bytes
	size int64    // last size seen, for the read lag

	held   []byte    // start of a line whose '\n' has not been read yet, at most MaxLineBytes+1 bytes
	over   bool      // held overflowed: the rest of the line is being skipped
	heldAt time.Time // when held last grew; zero while nothing is held
	skip   int       // header lines still to skip

	ev      []byte // multiline event being assembled
	evLines int
	evEnd   int64
	evLast  time.Time
	evOver  bool

	// What the last rescan's stat of the path said (scanSeq: which rescan), and the
	// modification time the last safety-net poll looked at: an unchanged size and time let
	// the poll skip the file without a system call.
	scanSize  int64
	scanMod   time.Time
	scanSeq   uint64
	polledMod time.Time

	queued    bool
	gone      bool // no longer at a matching path (renamed away or deleted)
	retired   bool
	eofSince  time.Time // zero while data is known to be pending
	recheckAt time.Time

	// Running FNV-64a of the Source's first headLen bytes (up to fingerprintMax), kept while
	// the Source was read from offset 0 (headOK): what identifies copytruncate's copy.
	headSum uint64
	headLen uint32
	headOK  bool
	// cutAtStart: the file was truncated while the agent was stopped and its copy is next to
	// it; the first read handles the truncation.
	cutAtStart bool

	used uint64 // when last read (runState.useSeq), for the descriptor cap
	// tail is the hash of the last bytes read, just before off (see tailprint.go).
	tail Fingerprint
}

// track opens path, found other than by a walk (a rename event, a rotated file looked for
// by inode), and starts following it.
func (t *Tailer) track(path string) *file {
	return t.trackAs(path, opening{linkOK: t.opts.FollowSymlinks})
}

// trackAs opens path as the walk saw it and starts following it.
func (t *Tailer) trackAs(path string, o opening) *file {
	s := t.st
	fd, err := t.openChecked(path, o)
	if err != nil {
		switch {
		case isSkip(err), t.tooManyOpen(err):
		case errors.Is(err, fs.ErrNotExist):
			// Vanished between the walk and the open: counted, but rotation makes this
			// common enough that it is not worth a log line.
			t.m.FileErrors.Inc()
		default:
			t.fileErr(path, err)
		}
		return nil
	}
	fi, err := fd.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		t.release(fd)
		if err != nil {
			t.fileErr(path, err)
		}
		return nil
	}
	id := fileID(fi)
	if !o.linkOK && o.id != (FileID{}) && id != o.id {
		// Not the file the walk saw (replaced since, maybe by something that is not allowed
		// to be read): the next scan looks again.
		t.release(fd)
		t.scheduleRescan()
		return nil
	}
	if f := s.files[id]; f != nil { // replaced between stat and open by a file we know
		t.release(fd)
		return f
	}
	if s.errLogged[path] {
		delete(s.errLogged, path)
		if t.opts.FileError != nil {
			t.opts.FileError(path, nil)
		}
	}
	size := fi.Size()
	var off int64
	var fp Fingerprint
	matched, cutAtStart := false, false
	if pos, ok := s.restore[id]; ok {
		delete(s.restore, id)
		ok, err := fingerprintMatches(fd, pos.Fingerprint, size)
		if err == nil && ok && pos.Offset <= size {
			var same bool
			if same, err = tailMatches(fd, pos.Tail, pos.Offset, size); err == nil && !same {
				ok = false // rewritten with the same start: what the offset counted is gone
			}
		}
		if err != nil {
			t.fileErr(path, err)
		} else if (!ok || pos.Offset > size) && t.copyAtStart(id, path, pos) {
			// copytruncate ran while we were stopped and left the rest of the stored content
			// in a copy: resume the stored Source, and let the first read handle the
			// truncation as if it had been seen live (read the copy, then restart from 0).
			matched, fp, off, cutAtStart = true, pos.Fingerprint, pos.Offset, true
		} else if ok {
			matched, fp, off = true, pos.Fingerprint, pos.Offset
			if off > size {
				t.m.Truncations.Inc()
				t.log.Warn("tailer: file is shorter than its stored position, reading from the start",
					"path", path, "offset", off, "size", size)
				off = 0
			}
		} else {
			t.log.Info("tailer: stored position belongs to an older file with the same inode, or to content rewritten since, reading from the start", "path", path)
		}
	} else if pos, ok := s.retired[id]; ok {
		// Retired while its directory could not be listed, or renamed away and back: what
		// was read of it is not read again.
		t.forgetRetired(id)
		ok, err := fingerprintMatches(fd, pos.Fingerprint, size)
		if err == nil && ok {
			ok, err = tailMatches(fd, pos.Tail, pos.Offset, size)
		}
		if err == nil && ok && pos.Offset <= size {
			matched, fp, off = true, pos.Fingerprint, pos.Offset
			t.log.Info("tailer: file seen again, going on from where it was retired", "path", path, "offset", off)
		}
	}
	if !matched {
		fp, err = fingerprint(fd, size)
		if err != nil {
			t.release(fd)
			t.fileErr(path, err)
			return nil
		}
		if s.initial && t.opts.FirstStart && t.opts.StartAt == "end" {
			off = lineStartBefore(fd, size, t.opts.MaxLineBytes)
		}
	}
	f := &file{
		src:  &Source{Index: t.opts.NextIndex.Add(1), ID: id, Fingerprint: fp, Path: path},
		path: path, fd: fd, off: off, size: size, cutAtStart: cutAtStart,
	}
	if off > 0 && !cutAtStart {
		if tp, err := hashBefore(fd, off); err == nil {
			f.tail = tp // checked from here on
		}
	}
	if off == 0 {
		f.skip = t.opts.SkipHeaderLines
		f.resetHead()
	}
	s.files[id] = f
	t.touch(f)
	t.log.Info("tailer: following file", "path", path, "offset", off, "source", f.src.Index)
	t.sink.Open(f.src, off)
	t.enqueue(f)
	return f
}

// lineStartBefore is where start_at end begins in a file of size bytes: its end, or, when
// a line is being written there, that line's start (after the last '\n', looked for in the
// last max+1 bytes), so that the line is sent whole once finished rather than its tail as a
// line of its own. The Kinesis Agent's END_OF_FILE does the same (AbstractParser's
// goToInitialPosition rolls back to the last record boundary). A line longer than max would
// be cut anyway: it is skipped, as are unreadable bytes.
func lineStartBefore(fd *os.File, size int64, max int) int64 {
	if size == 0 {
		return 0
	}
	var last [1]byte
	if _, err := fd.ReadAt(last[:], size-1); err != nil || last[0] == '\n' {
		return size
	}
	n := min(size, int64(max)+1)
	buf := make([]byte, n)
	if _, err := fd.ReadAt(buf, size-n); err != nil {
		return size
	}
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		return size - n + int64(i) + 1
	}
	if n == size {
		return 0 // the file is one unfinished line
	}
	return size
}

// maxRetired bounds the retired positions kept for files that come back.
const maxRetired = 4096

func (t *Tailer) rememberRetired(f *file) {
	s := t.st
	if _, ok := s.retired[f.src.ID]; !ok {
		s.retiredQ = append(s.retiredQ, f.src.ID)
	}
	s.retired[f.src.ID] = Position{ID: f.src.ID, Fingerprint: f.src.Fingerprint, Path: f.path, Offset: f.off, Tail: f.tail}
	for len(s.retiredQ) > maxRetired {
		delete(s.retired, s.retiredQ[0])
		s.retiredQ = s.retiredQ[1:]
	}
}

func (t *Tailer) forgetRetired(id FileID) {
	delete(t.st.retired, id) // its retiredQ entry goes when it reaches the front
}

func fingerprint(fd *os.File, size int64) (Fingerprint, error) {
	n := min(size, fingerprintMax)
	sum, err := hashPrefix(fd, n)
	if err != nil {
		return Fingerprint{}, err
	}
	return Fingerprint{Len: uint32(n), Sum: sum}, nil
}

func fingerprintMatches(fd *os.File, fp Fingerprint, size int64) (bool, error) {
	if fp.Len == 0 {
		return true, nil
	}
	if size < int64(fp.Len) {
		return false, nil
	}
	sum, err := hashPrefix(fd, int64(fp.Len))
	return sum == fp.Sum, err
}

func hashPrefix(fd *os.File, n int64) (uint64, error) {
	var b [fingerprintMax]byte
	if _, err := fd.ReadAt(b[:n], 0); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return 0, fmt.Errorf("tailer: fingerprint of %s: %w", fd.Name(), err)
	}
	h := fnv.New64a()
	_, _ = h.Write(b[:n])
	return h.Sum64(), nil
}

// reopen gives an idle-closed file its descriptor back if it has grown and is still the same
// file. It reports whether f can be read.
func (t *Tailer) reopen(f *file) bool {
	fi, err := os.Stat(f.path)
	if err != nil || fileID(fi) != f.src.ID {
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.fileErr(f.path, err)
			return false
		}
		t.setGone(f, true)
		t.scheduleRescan()
		return false
	}
	if fi.Size() == f.off {
		return false
	}
	fd, err := t.openFile(f.path, os.O_RDONLY)
	if err != nil {
		if !t.tooManyOpen(err) {
			t.fileErr(f.path, err)
		}
		return false
	}
	fi, err = fd.Stat()
	ok := false
	if err == nil && fileID(fi) == f.src.ID {
		// The inode may have been freed and reused while we held no descriptor.
		ok, err = fingerprintMatches(fd, f.src.Fingerprint, fi.Size())
	}
	if err != nil || !ok {
		t.release(fd)
		if err != nil {
			t.fileErr(f.path, err)
		} else {
			t.setGone(f, true)
			t.scheduleRescan()
		}
		return false
	}
	f.fd = fd
	if t.tailChanged(f, fi.Size()) {
		f.cutAtStart = true // rewritten while closed: the first read restarts it
	}
	return true
}

// setGone keeps runState.gone in step, so that events need not scan every file for gone ones.
func (t *Tailer) setGone(f *file, gone bool) {
	if f.gone == gone {
		return
	}
	f.gone = gone
	if gone {
		t.st.gone++
	} else {
		t.st.gone--
	}
}

// readChunk reads and frames one buffer's worth of f. more says f has more to read now.
func (t *Tailer) readChunk(f *file) (more bool, err error) {
	if f.retired {
		return false, nil
	}
	if f.fd == nil && !t.reopen(f) {
		return false, nil
	}
	t.touch(f)
	if !f.cutAtStart && !f.eofSince.IsZero() && t.tailChanged(f, math.MaxInt64) {
		// It was at its end and has grown: what precedes the offset is not what was read, so
		// it was truncated and written again (truncated logs it).
		f.cutAtStart = true
	}
	if f.cutAtStart {
		f.cutAtStart = false
		if fi, err := f.fd.Stat(); err == nil {
			f.size = fi.Size()
		}
		return true, t.truncated(f)
	}
	buf := t.st.buf
	n, rerr := f.fd.ReadAt(buf, f.off)
	if n > 0 {
		f.eofSince = time.Time{}
		if err := t.frame(f, buf[:n]); err != nil {
			return false, err
		}
	}
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		t.fileErr(f.path, rerr)
		return false, nil
	}
	if n == len(buf) {
		return true, nil
	}
	if n == 0 {
		fi, err := f.fd.Stat()
		if err != nil {
			t.fileErr(f.path, err)
			return false, nil
		}
		f.size = fi.Size()
		if f.size < f.off {
			if err := t.truncated(f); err != nil {
				return false, err
			}
			return true, nil
		}
	}
	if f.size < f.off {
		f.size = f.off
	}
	if f.eofSince.IsZero() {
		f.eofSince = time.Now()
		if f.gone {
			t.wakeAt(f.eofSince.Add(t.goneRecheck))
		} else {
			t.wakeAt(f.eofSince.Add(t.idleClose))
		}
	}
	if t.opts.Once {
		if err := t.flushHeld(f); err != nil {
			return false, err
		}
		if err := t.flushEvent(f); err != nil {
			return false, err
		}
	}
	return false, nil
}

// checkContent catches a copytruncate that the size alone cannot show: the file was truncated
// and written past the read offset again before we looked. Its first bytes then no longer
// hash to the Source's fingerprint.
func (t *Tailer) checkContent(f *file) error {
	fp := f.src.Fingerprint
	if fp.Len == 0 || f.gone || f.off < int64(fp.Len) {
		return nil
	}
	ok, err := fingerprintMatches(f.fd, fp, f.size)
	if err != nil {
		t.fileErr(f.path, err)
		return nil
	}
	if ok && !t.tailChanged(f, f.size) {
		return nil
	}
	return t.truncated(f)
}

// findMoved looks for an idle-closed file that left its path in the directory it was in
// (where rotation renames to) and reopens it there.
func (t *Tailer) findMoved(f *file) bool {
	dir := filepath.Dir(f.path)
	entries, err := t.readDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil || fileID(info) != f.src.ID {
			continue
		}
		path := filepath.Join(dir, e.Name())
		fd, err := t.openFile(path, os.O_RDONLY)
		if err != nil {
			if !t.tooManyOpen(err) {
				t.fileErr(path, err)
			}
			return false
		}
		fi, err := fd.Stat()
		ok := false
		if err == nil && fileID(fi) == f.src.ID {
			ok, err = fingerprintMatches(fd, f.src.Fingerprint, fi.Size())
		}
		if err != nil || !ok {
			t.release(fd)
			return false
		}
		f.fd, f.path = fd, path
		return true
	}
	return false
}

// truncated restarts f from 0 after it shrank below the read offset (copytruncate). What was
// not read yet is in the copy logrotate made just before truncating: when it is found next to
// the file, it is read to its end first, under the old Source, so those lines are not lost.
func (t *Tailer) truncated(f *file) error {
	f.cutAtStart = false // a poll's content check may get here first
	t.m.Truncations.Inc()
	if cp := t.findCopy(f); cp != nil {
		from := f.off
		n, err := t.readCopy(f, cp)
		t.release(cp) // read once: it is not tracked
		if err != nil {
			return err
		}
		t.log.Info("tailer: file truncated, read the rest from its copy, reading from the start",
			"path", f.path, "copy", cp.Name(), "offset", from, "copied", n, "size", f.size)
	} else {
		t.log.Warn("tailer: file truncated, reading from the start", "path", f.path, "offset", f.off, "size", f.size)
	}
	// What was read before the truncation is complete data: ship it rather than lose it.
	if err := t.flushHeld(f); err != nil {
		return err
	}
	if err := t.flushEvent(f); err != nil {
		return err
	}
	f.off = 0
	f.tail = Fingerprint{}
	f.resetHead()
	// The content the Source's fingerprint describes is gone: a stored position for it would
	// no longer match after a restart and the new content would be read twice. The new content
	// gets a Source of its own.
	fp, err := fingerprint(f.fd, f.size)
	if err != nil {
		t.fileErr(f.path, err)
		fp = Fingerprint{}
	}
	old := f.src
	f.src = &Source{Index: t.opts.NextIndex.Add(1), ID: old.ID, Fingerprint: fp, Path: f.path}
	t.sink.Close(old)
	t.sink.Open(f.src, 0)
	return nil
}

// frame splits data (read at f.off) into lines and hands them on, in batches to a BatchSink.
// Lines are slices of data unless they started in an earlier chunk or were cut.
func (t *Tailer) frame(f *file, data []byte) error {
	f.foldHead(data)
	f.foldTail(data)
	max := t.opts.MaxLineBytes
	var lines, truncated int
	base := f.off
	start := 0
	var err error
	batch, ends := t.st.lines[:0], t.st.ends[:0] // for t.batch
	for start < len(data) {
		i := bytes.IndexByte(data[start:], '\n')
		if i < 0 {
			t.hold(f, data[start:])
			f.heldAt = time.Now()
			t.wakeAt(f.heldAt.Add(t.opts.PartialLineTimeout))
			break
		}
		line := data[start : start+i]
		over, held := false, false
		if len(f.held) > 0 || f.over {
			t.hold(f, line)
			line, over, held = f.held, f.over, true
			f.held, f.over, f.heldAt = f.held[:0], false, time.Time{}
		}
		start += i + 1
		if !over && !t.opts.KeepCR && len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		cut := over || len(line) > max
		if cut {
			line = t.cut(line, max)
			truncated++
		}
		lines++
		if t.batch == nil || f.skip > 0 {
			err = t.emit(f, line, base+int64(start))
		} else {
			batch = append(batch, line)
			ends = append(ends, base+int64(start))
			if held || cut {
				// Not a slice of data: its bytes are reused by the next held or cut line.
				err = t.batch.Lines(f.src, batch, ends)
				batch, ends = batch[:0], ends[:0]
			}
		}
		if err != nil {
			break
		}
	}
	if err == nil && len(batch) > 0 {
		err = t.batch.Lines(f.src, batch, ends)
	}
	t.st.lines, t.st.ends = batch[:0], ends[:0]
	if cap(f.held) > 64<<10 && len(f.held) == 0 {
		f.held = nil // a long line passed: give its memory back
	}
	f.off += int64(len(data))
	t.m.LinesRead.Add(float64(lines))
	t.m.BytesRead.Add(float64(len(data)))
	if truncated > 0 {
		t.noteCut(f.path, truncated, max)
	}
	return err
}

// hold keeps the start of an unfinished line, bounded by MaxLineBytes+1 (one more than
// allowed, so that the line is known to be too long).
func (t *Tailer) hold(f *file, b []byte) {
	room := t.opts.MaxLineBytes + 1 - len(f.held)
	if len(b) > room {
		b = b[:room]
		f.over = true
	}
	f.held = append(f.held, b...)
}

// cut truncates line to max bytes, the terminator included. line may be a slice of the read
// buffer whose bytes after it are not framed yet, so the terminator goes into a copy.
func (t *Tailer) cut(line []byte, max int) []byte {
	term := t.opts.TruncatedTerminator
	if term == "" {
		return line[:max]
	}
	s := t.st
	s.scratch = append(append(s.scratch[:0], line[:max-len(term)]...), term...)
	return s.scratch
}

// flushHeld emits an unterminated last line (partial line timeout, Once mode, truncation,
// retirement). Its end is f.off, after its bytes: what follows later is a new line.
func (t *Tailer) flushHeld(f *file) error {
	if len(f.held) == 0 && !f.over {
		return nil
	}
	line := f.held
	if f.over || len(line) > t.opts.MaxLineBytes {
		line = t.cut(line, t.opts.MaxLineBytes)
		t.noteCut(f.path, 1, t.opts.MaxLineBytes)
	}
	f.held, f.over, f.heldAt = f.held[:0], false, time.Time{}
	t.m.LinesRead.Inc()
	return t.emit(f, line, f.off)
}

func (t *Tailer) emit(f *file, line []byte, end int64) error {
	if f.skip > 0 {
		f.skip--
		return nil
	}
	ml := t.opts.Multiline
	if ml == nil {
		return t.sink.Line(f.src, line, end)
	}
	if f.evLines > 0 && !ml.Match(line) {
		room := t.opts.MultilineMaxBytes - len(f.ev)
		if room > 0 {
			f.ev = append(f.ev, '\n')
			room--
		}
		if len(line) > room {
			line = line[:room]
			f.evOver = true
		}
		f.ev = append(f.ev, line...)
		f.evLines++
		f.evEnd = end
		f.evLast = time.Now()
		if f.evLines >= t.opts.MultilineMaxLines {
			return t.flushEvent(f)
		}
		return nil
	}
	if err := t.flushEvent(f); err != nil {
		return err
	}
	f.evOver = false
	if len(line) > t.opts.MultilineMaxBytes {
		line, f.evOver = line[:t.opts.MultilineMaxBytes], true
	}
	f.ev = append(f.ev[:0], line...)
	f.evLines, f.evEnd, f.evLast = 1, end, time.Now()
	t.wakeAt(f.evLast.Add(t.opts.MultilineTimeout))
	return nil
}

func (t *Tailer) flushEvent(f *file) error {
	if f.evLines == 0 {
		return nil
	}
	if f.evOver {
		t.noteCut(f.path, 1, t.opts.MultilineMaxBytes)
		if term := t.opts.TruncatedTerminator; term != "" {
			// f.ev is the file's own buffer: the terminator replaces its last bytes in place.
			f.ev = append(f.ev[:min(len(f.ev), t.opts.MultilineMaxBytes-len(term))], term...)
		}
	}
	ev := f.ev
	f.ev, f.evLines, f.evOver = f.ev[:0], 0, false
	if cap(f.ev) > 64<<10 {
		f.ev = nil
	}
	return t.sink.Line(f.src, ev, f.evEnd)
}

// retire stops tracking a file that left its path, after one last read.
func (t *Tailer) retire(f *file) error {
	if f.fd != nil {
		eof := f.eofSince
		for {
			more, err := t.readChunk(f)
			if err != nil {
				return err
			}
			if !more {
				break
			}
		}
		if !f.eofSince.Equal(eof) {
			return nil // it grew: a writer still has it, look again later
		}
	}
	if err := t.flushHeld(f); err != nil {
		return err
	}
	if err := t.flushEvent(f); err != nil {
		return err
	}
	t.closeFD(f)
	t.setGone(f, false)
	f.retired = true
	t.rememberRetired(f)
	delete(t.st.files, f.src.ID)
	for p, g := range t.st.byPath {
		if g == f {
			delete(t.st.byPath, p)
		}
	}
	t.log.Debug("tailer: file retired", "path", f.src.Path, "offset", f.off)
	t.sink.Close(f.src)
	return nil
}
