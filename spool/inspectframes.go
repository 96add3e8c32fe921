package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// InspectFrames is Inspect, and then calls fn for every data frame still on disk, acknowledged
// or not, in sequence order (Frame.Payload is a fresh slice). Like Inspect it takes no lock and
// writes nothing, so it may run beside an agent that has the spool open: a segment deleted
// meanwhile is skipped (its frames were acknowledged), a torn tail ends its segment's walk, and
// corrupt bytes are stepped over the way the reader does.
func InspectFrames(dir string, fn func(Frame) error) (Backlog, error) {
	b, segs, err := inspect(dir)
	if err != nil {
		return b, err
	}
	buf := make([]byte, 0, readBufSize)
	for _, s := range segs {
		if err := inspectSegmentFrames(s.path, s.validEnd, buf, fn); err != nil && !errors.Is(err, os.ErrNotExist) {
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
