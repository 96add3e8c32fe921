package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Backlog is what a spool directory holds, as read by Inspect.
type Backlog struct {
	Bytes         int64  // bytes of all segment files
	Segments      int    // segment files
	LastSeq       uint64 // highest data frame found
	AckedThrough  uint64 // the acknowledged cursor found on disk
	UnackedFrames uint64 // data frames after the cursor
	UnackedBytes  int64  // their size on disk, headers and padding included
	// BrokenFiles and BrokenBytes are the *.broken files: damaged bytes recovery cut off or
	// set aside, kept for post-mortems. Their frames were lost (see Recovery).
	BrokenFiles int
	BrokenBytes int64
}

// Inspect reads the spool in dir without opening it: no lock is taken, nothing is written,
// recovered or deleted, so it may run while an agent has the spool open (`kinship status`).
// A torn or half-written tail (the active segment being appended to) ends that segment's
// walk; a segment deleted meanwhile is skipped. A missing dir is an empty spool.
func Inspect(dir string) (Backlog, error) {
	b, _, err := inspect(dir)
	return b, err
}

// inspectedSegment is a segment Inspect found, with the end of its valid frames.
type inspectedSegment struct {
	path     string
	last     uint64
	validEnd int64
}

func inspect(dir string) (Backlog, []inspectedSegment, error) {
	var b Backlog
	entries, err := osFS{}.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return b, nil, nil
	}
	if err != nil {
		return b, nil, fmt.Errorf("spool: inspect: %w", err)
	}
	var firsts []uint64
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".broken") {
			if fi, err := e.Info(); err == nil {
				b.BrokenFiles++
				b.BrokenBytes += fi.Size()
			}
			continue
		}
		if strings.HasSuffix(name, ".seg") && len(name) == 24 {
			if first, err := strconv.ParseUint(name[:20], 10, 64); err == nil && first > 0 {
				firsts = append(firsts, first)
			}
		}
	}
	slices.Sort(firsts)
	var segs []inspectedSegment
	buf := make([]byte, readBufSize)
	for i, first := range firsts {
		path := filepath.Join(dir, segName(first))
		res, size, err := scanFile(osFS{}, path, buf, i < len(firsts)-1) // as Open does
		if errors.Is(err, os.ErrNotExist) {
			continue // acked and deleted since ReadDir
		}
		if err != nil {
			return b, nil, fmt.Errorf("spool: inspect: segment %s: %w", filepath.Base(path), err)
		}
		if res.validEnd == 0 || res.first != first {
			continue // set aside by the next Open; holds nothing shippable
		}
		if len(segs) == 0 {
			b.AckedThrough = first - 1
		}
		b.Bytes += size
		b.Segments++
		b.AckedThrough = max(b.AckedThrough, res.ack)
		b.LastSeq = max(b.LastSeq, res.last)
		segs = append(segs, inspectedSegment{path: path, last: res.last, validEnd: res.validEnd})
	}
	if b.LastSeq > b.AckedThrough {
		b.UnackedFrames = b.LastSeq - b.AckedThrough
	}
	for _, s := range segs {
		if s.last <= b.AckedThrough {
			continue
		}
		n, err := unackedBytes(s.path, s.validEnd, b.AckedThrough, buf)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return b, nil, fmt.Errorf("spool: inspect: segment %s: %w", filepath.Base(s.path), err)
		}
		b.UnackedBytes += n
	}
	return b, segs, nil
}

// unackedBytes sums the sizes of the data frames after acked in one segment.
func unackedBytes(path string, end int64, acked uint64, buf []byte) (int64, error) {
	f, err := osFS{}.Open(path)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	fr := newFrameReader(f, segHeaderSize, end, buf)
	first, err := segFirst(f)
	if err != nil {
		return 0, err
	}
	last, allow := first-1, uint64(0)
	var n int64
	for {
		at := fr.off
		typ, seq, _, err := fr.next(false)
		if err == io.EOF {
			return n, nil
		}
		if err == nil && holdsSeq(typ) && (seq <= last || seq > last+1+allow) {
			fr.off = at
			err = errCorrupt
		}
		if errors.Is(err, errCorrupt) {
			// Skip corrupt bytes the way the reader does; the frames after them still ship.
			found, a, rerr := fr.resync(at, last)
			if rerr != nil || !found {
				return n, rerr
			}
			allow = a
			continue
		}
		if err == nil && holdsSeq(typ) {
			last, allow = seq, 0
		}
		if err != nil {
			return n, err
		}
		if typ == frameData && seq > acked {
			n += fr.off - at
		}
	}
}
