package tailer

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// The tail print. The fingerprint of a file's first bytes cannot tell a file truncated and
// written past the read offset again, with the same first KiB (fixed headers), from the file
// that was read: without more, the lines between its start and the old offset would be
// skipped. So the Tailer also keeps a hash of the bytes just before its read offset
// (file.tail: the last bytes read, up to tailPrintMax), and a stored Position carries one for
// its offset (Position.Tail, see TailPrint). They are checked when a file is reopened
// (idleness, the descriptor cap), when a file at its end grows again, when the poll finds
// its size or modification time changed, and at start against the stored position. When the
// bytes differ, the file is treated as truncated: its copy is looked for, then it is read
// from 0.
//
// What remains undetectable: a rewrite whose bytes just before the offset are the same as
// before (a file rewritten with the same content up to there, or lines that repeat exactly
// across the print) and a rewrite between two reads that leaves size and content around the
// offset as they were. Filebeat and the Kinesis Agent do not detect these either.

const tailPrintMax = 128

// TailPrint returns the fingerprint of the bytes just before offset (up to 128) in the file
// at path, provided it is still the file id; Len 0 when it cannot be taken. It is what
// Position.Tail holds; the caller storing positions takes it when it saves them.
func TailPrint(path string, id FileID, offset int64) Fingerprint {
	if offset <= 0 {
		return Fingerprint{}
	}
	fd, err := os.Open(path)
	if err != nil {
		return Fingerprint{}
	}
	defer fd.Close()
	fi, err := fd.Stat()
	if err != nil || fileID(fi) != id || fi.Size() < offset {
		return Fingerprint{}
	}
	n := min(offset, tailPrintMax)
	sum, err := hashAt(fd, offset-n, n)
	if err != nil {
		return Fingerprint{}
	}
	return Fingerprint{Len: uint32(n), Sum: sum}
}

// tailMatches says whether the fp.Len bytes before off in fd still hash to fp.Sum.
func tailMatches(fd *os.File, fp Fingerprint, off, size int64) (bool, error) {
	if fp.Len == 0 {
		return true, nil
	}
	if off > size || int64(fp.Len) > off {
		return false, nil
	}
	sum, err := hashAt(fd, off-int64(fp.Len), int64(fp.Len))
	if errors.Is(err, io.EOF) {
		return false, nil // shorter than the offset now: truncated
	}
	return sum == fp.Sum, err
}

func hashAt(fd *os.File, at, n int64) (uint64, error) {
	var b [tailPrintMax]byte
	if _, err := fd.ReadAt(b[:n], at); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return 0, fmt.Errorf("tailer: tail print of %s at %d: %w", fd.Name(), at, err)
	}
	h := fnv.New64a()
	_, _ = h.Write(b[:n])
	return h.Sum64(), nil
}

// foldTail remembers the hash of the last bytes of data, which ends at the new read offset.
func (f *file) foldTail(data []byte) {
	n := min(len(data), tailPrintMax)
	h := uint64(fnvOffset64)
	for _, b := range data[len(data)-n:] {
		h ^= uint64(b)
		h *= fnvPrime64
	}
	f.tail = Fingerprint{Len: uint32(n), Sum: h}
}

// tailChanged reports whether the bytes before f's read offset are no longer the ones read.
func (t *Tailer) tailChanged(f *file, size int64) bool {
	if f.tail.Len == 0 || f.fd == nil {
		return false
	}
	ok, err := tailMatches(f.fd, f.tail, f.off, size)
	if err != nil {
		t.fileErr(f.path, err)
		return false
	}
	return !ok
}

// hashBefore is the tail print of the bytes before off, read from fd.
func hashBefore(fd *os.File, off int64) (Fingerprint, error) {
	n := min(off, tailPrintMax)
	sum, err := hashAt(fd, off-n, n)
	return Fingerprint{Len: uint32(n), Sum: sum}, err
}
