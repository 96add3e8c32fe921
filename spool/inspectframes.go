package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// InspectFrames is Inspect, and then calls fn for the data frames still on disk from the seq
// that from returns (given what Inspect found), acknowledged or not, in sequence order
// (Frame.Payload is a fresh slice); segments wholly before it are not read. nil from: every
// frame. Like Inspect it takes no lock and
// writes nothing, so it may run beside an agent that has the spool open: a segment deleted
// meanwhile is skipped (its frames were acknowledged), a torn tail ends its segment's walk, and
// corrupt bytes are stepped over the way the reader does.
func InspectFrames(dir string, from func(Backlog) uint64, fn func(Frame) error) (Backlog, error) {
	b, segs, err := inspect(dir)
	if err != nil {
		return b, err
	}
	first := uint64(0)
	if from != nil {
		first = from(b)
	}
	buf := make([]byte, 0, readBufSize)
	for _, s := range segs {
		if s.last < first {
			continue
		}
		err := inspectSegmentFrames(s.path, s.validEnd, buf, func(fr Frame) error {
			if fr.Seq < first {
				return nil
			}
			return fn(fr)
		})
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return b, fmt.Errorf("spool: inspect: segment %s: %w", filepath.Base(s.path), err)
		}
	}
	return b, nil
}

func inspectSegmentFrames(path string, end int64, buf []byte, fn func(Frame) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	fr := newFrameReader(f, segHeaderSize, end, buf)
	first, err := segFirst(f)
	if err != nil {
		return err
	}
	last, allow := first-1, uint64(0)
	for {
		at := fr.off
		typ, seq, p, err := fr.next(true)
		if err == io.EOF {
			return nil
		}
		if err == nil && typ == frameData && (seq <= last || seq > last+1+allow) {
			fr.off = at
			err = errCorrupt
		}
		if errors.Is(err, errCorrupt) {
			found, a, rerr := fr.resync(at, last)
			if rerr != nil || !found {
				return rerr
			}
			allow = a
			continue
		}
		if err != nil {
			return err
		}
		if typ == frameData {
			last, allow = seq, 0
			if err := fn(Frame{Seq: seq, Payload: p}); err != nil {
				return err
			}
		}
	}
}
