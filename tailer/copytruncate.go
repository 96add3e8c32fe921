package tailer

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FNV-64a, folded in place so that the hash of a file's first bytes can be kept up to date
// as they are read, without holding the bytes (10,000 files × 1 KiB would be a tenth of the
// memory budget). Streaming FNV-1a over [0, n) equals hash/fnv over the same bytes, so
// hashPrefix of a candidate copy can be compared with it.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// resetHead starts the running fingerprint of f's content over, at offset 0 of a Source.
func (f *file) resetHead() {
	f.headSum, f.headLen, f.headOK = fnvOffset64, 0, true
}

// foldHead adds data, read at f.off, to the running hash of the content's first bytes. The
// Source's fingerprint was taken when tracking started and may cover only a few bytes (a file
// truncated to 0 gets a Source with an empty fingerprint); this one grows to fingerprintMax
// bytes as the file is read, so that the copy copytruncate leaves can be told from older
// copies and unrelated files with the same first bytes.
func (f *file) foldHead(data []byte) {
	if !f.headOK || f.headLen >= fingerprintMax {
		return
	}
	if int64(f.headLen) != f.off {
		f.headOK = false // read from a stored offset: the start is unknown
		return
	}
	n := min(len(data), fingerprintMax-int(f.headLen))
	h := f.headSum
	for _, b := range data[:n] {
		h ^= uint64(b)
		h *= fnvPrime64
	}
	f.headSum, f.headLen = h, f.headLen+uint32(n)
}

// contentPrint is the best fingerprint known for the content f has been reading: the running
// one when it covers more bytes than the Source's.
func (f *file) contentPrint() Fingerprint {
	fp := f.src.Fingerprint
	if f.headOK && f.headLen > fp.Len {
		return Fingerprint{Len: f.headLen, Sum: f.headSum}
	}
	return fp
}

// compressedName says whether name is what logrotate's compress (or a usual compresscmd)
// leaves: its bytes cannot match a fingerprint of plain text, so it is not even opened.
func compressedName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".gz", ".bz2", ".xz", ".zst", ".lz4", ".lzma", ".z", ".zip":
		return true
	}
	return false
}

// findCopy looks, in f's directory, for the copy logrotate's copytruncate made of f before
// truncating it: a regular file, not tracked, at least f.off bytes long, whose first bytes
// hash to what f's content started with. Several candidates (an older copy that began with
// the same bytes): the most recently modified, which is the one just made. nil when none.
//
// Only the directory of the file is searched (where copytruncate's copy, dateext's and
// delaycompress's names go); an olddir elsewhere is not. The directory is listed once, and
// only when a truncation was detected.
//
// logrotate truncates only after the copy is complete, so a copy shorter than f.off is not
// one being written: it is some other file, and is not waited for. A copy already compressed
// (compress without delaycompress) is not found: the unread lines are lost, as before.
func (t *Tailer) findCopy(f *file) *os.File {
	fp := f.contentPrint()
	if fp.Len == 0 {
		return nil // nothing identifies the content: any file would match
	}
	dir := filepath.Dir(f.path)
	entries, err := t.readDir(dir)
	if err != nil {
		t.log.Debug("tailer: listing directory for a copytruncate copy", "dir", dir, "err", err)
		return nil
	}
	var best *os.File
	var bestMod time.Time
	for _, e := range entries {
		if !e.Type().IsRegular() || compressedName(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Size() < f.off || info.Size() < int64(fp.Len) {
			continue
		}
		id := fileID(info)
		if id == f.src.ID || t.st.files[id] != nil {
			continue // the truncated file itself, or a file read in its own right
		}
		path := filepath.Join(dir, e.Name())
		fd, err := t.openFile(path, os.O_RDONLY)
		if err != nil {
			continue // e.g. permission denied: not ours to report, it is not a matching path
		}
		fi, err := fd.Stat()
		ok := false
		if err == nil && fileID(fi) == id && fi.Size() >= f.off {
			ok, err = fingerprintMatches(fd, fp, fi.Size())
		}
		if err != nil || !ok || (best != nil && !fi.ModTime().After(bestMod)) {
			t.release(fd)
			continue
		}
		if best != nil {
			t.release(best)
		}
		best, bestMod = fd, fi.ModTime()
	}
	return best
}

// readCopy reads cp, the copy of f's content, from f.off to its end, as a continuation of
// f's Source: the lines are the ones f would have read had it not been truncated, and their
// end offsets continue the Source's. It reports how many bytes it read.
func (t *Tailer) readCopy(f *file, cp *os.File) (int64, error) {
	buf := t.st.buf
	var total int64
	for {
		n, rerr := cp.ReadAt(buf, f.off)
		if n > 0 {
			total += int64(n)
			if err := t.frame(f, buf[:n]); err != nil {
				return total, err
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				// Not fileErr: the copy is read once and never retried, and a path in
				// errLogged would keep every poll sweeping.
				t.m.FileErrors.Inc()
				t.log.Warn("tailer: reading copytruncate's copy, the rest of it is lost",
					"copy", cp.Name(), "offset", f.off, "err", rerr)
			}
			return total, nil
		}
		if n == 0 {
			return total, nil
		}
	}
}

// copyAtStart says whether a copy of the content a stored position describes is next to the
// file now at its inode: copytruncate ran while the agent was stopped.
func (t *Tailer) copyAtStart(id FileID, path string, pos Position) bool {
	probe := &file{src: &Source{ID: id, Fingerprint: pos.Fingerprint}, path: path, off: pos.Offset}
	cp := t.findCopy(probe)
	if cp == nil {
		return false
	}
	t.release(cp) // found again, and read, by the first readChunk's truncated
	return true
}
