package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
)

// Next returns the next durable frame after the acknowledged cursor that this process has not
// returned yet, blocking until one exists, ctx is done or the spool is closed. With
// Options.Write backlog it also returns frames not yet durable, from memory: one the
// destination acknowledges before the next commit is never written (see the package doc).
// After a restart it starts right after the persisted cursor. Payload is a fresh slice the caller owns; frames
// bigger than the reader's 256 KiB buffer are read straight into it.
func (s *Spool) Next(ctx context.Context) (Frame, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.rfr.buf == nil {
		s.rfr.buf = make([]byte, 0, readBufSize)
		if s.opts.Buffers != nil {
			s.rfr.alloc = s.opts.Buffers.Get
		}
		s.rfr.z = &s.z
	}
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return Frame{}, ErrClosed
		}
		if f, ok := s.takePendingLocked(); ok {
			s.mu.Unlock()
			if s.rfile != nil {
				// The disk reader is behind now: when it is needed again it starts afresh at the
				// first segment holding an unreturned frame, and jumps to it through the cache.
				_ = s.rfile.Close()
				s.rseg, s.rfile = nil, nil
			}
			return f, nil
		}
		if s.backlogMode() && s.rnext > s.durable {
			// Every frame up to the durable one was returned; the next will be appended.
			ch := s.changed
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return Frame{}, ctx.Err()
			case <-ch:
			}
			continue
		}
		if s.rseg != nil && s.rseg.gone {
			// Deleted under the reader (drop_oldest, or acknowledged): whatever it still
			// holds is below the cursor. Start again at the first segment still kept.
			if s.rfile != nil {
				_ = s.rfile.Close()
			}
			s.rseg, s.rfile = nil, nil
		}
		seg := s.rseg
		resume := int64(segHeaderSize)
		switch {
		case seg != nil:
		case s.rpos.seg != nil && s.rpos.seq+1 == s.rnext && !s.rpos.seg.gone:
			// Right after the last frame handed out, whose place a commit told.
			seg, resume = s.rpos.seg, s.rpos.off
		default:
			// Start at the first segment holding a frame not yet returned: after a restart the
			// acknowledged ones before it are neither read nor kept open.
			for _, c := range s.segs {
				if seg = c; c.last >= s.rnext {
					break
				}
			}
		}
		resumeLast := s.rpos.seq
		limit := seg.durEnd
		var next *segment
		if s.rfile != nil && s.rfr.off >= limit && seg != s.act {
			for _, c := range s.segs {
				if c.first > seg.first {
					next = c
					break
				}
			}
		}
		ch := s.changed
		rnext := s.rnext
		s.mu.Unlock()

		if s.rseg != seg || s.rfile == nil {
			f, err := s.fs.Open(seg.path)
			if errors.Is(err, fs.ErrNotExist) && !s.holdsSegment(seg) {
				// Deleted since it was picked: every frame in it was acknowledged; pick again.
				s.rseg, s.rfile = nil, nil
				continue
			}
			if err != nil {
				return Frame{}, fmt.Errorf("spool: segment %s: %w", filepath.Base(seg.path), err)
			}
			s.rseg, s.rfile = seg, f
			s.rfr.reset(f, resume, limit)
			s.rlast, s.allow = seg.first-1, 0
			if resume > segHeaderSize {
				s.rlast = resumeLast
			}
			continue
		}
		if next != nil {
			_ = s.rfile.Close()
			s.rfile, s.rseg = nil, next
			continue
		}
		if s.rfr.off >= limit {
			select {
			case <-ctx.Done():
				return Frame{}, ctx.Err()
			case <-ch:
			}
			continue
		}
		s.mu.Lock()
		c, ok := s.takeCachedLocked(seg, s.rfr.off, limit)
		if ok {
			s.inflight = append(s.inflight, inflight{seq: c.seq})
			s.rnext = c.seq + 1
			s.notePosLocked(c.seg, c.off+c.size, c.seq)
		}
		s.mu.Unlock()
		if ok {
			s.rfr.off = c.off + c.size
			s.rlast, s.allow = c.seq, 0
			return Frame{Seq: c.seq, Payload: c.p}, nil
		}
		s.rfr.end = limit
		s.rfr.dataFrom = rnext
		at := s.rfr.off
		typ, seq, p, err := s.rfr.next(true)
		if err == nil && holdsSeq(typ) && (seq <= s.rlast || seq > s.rlast+1+s.allow) {
			s.putBuffer(p)
			s.rfr.off = at
			err = fmt.Errorf("seq %d after %d: %w", seq, s.rlast, errCorrupt)
		}
		if err != nil {
			if errors.Is(err, errCorrupt) || errors.Is(err, io.EOF) {
				// Durable bytes went bad on disk: skip them, and ship the frames after them.
				found, a, rerr := s.rfr.resync(at, s.rlast)
				if rerr != nil {
					return Frame{}, fmt.Errorf("spool: segment %s: frame at %d: %w", filepath.Base(seg.path), at, rerr)
				}
				if !found {
					// Nothing valid up to the durable end; frames appended later may follow,
					// with seqs the skipped bytes could have held.
					s.rfr.off = limit
					a = uint64(limit-at) / frameHeaderSize
				}
				s.allow = a
				s.corrupt("spool: corrupt frame skipped by reader", seg.path, at, err, "skipped_bytes", s.rfr.off-at)
				continue
			}
			return Frame{}, fmt.Errorf("spool: segment %s: frame at %d: %w", filepath.Base(seg.path), at, err)
		}
		if holdsSeq(typ) {
			s.rlast, s.allow = seq, 0
		}
		if !holdsSeq(typ) || seq < rnext {
			continue
		}
		s.mu.Lock()
		if seq < s.rnext {
			// Dropped (drop_oldest) while it was being read: never hand it out.
			s.mu.Unlock()
			s.putBuffer(p)
			continue
		}
		if typ == frameDelivered {
			// Delivered before a commit wrote it, and above the cursor found at Open (acks
			// of later frames were not durable): it counts as handed out and acknowledged,
			// so the cursor can move past it.
			s.inflight = append(s.inflight, inflight{seq: seq, acked: true})
			s.rnext = seq + 1
			s.rpos = readPos{seg: seg, off: s.rfr.off, seq: seq}
			if s.advanceLocked() {
				if s.full {
					s.kick()
				} else {
					s.acked1()
				}
			}
			s.mu.Unlock()
			continue
		}
		s.inflight = append(s.inflight, inflight{seq: seq})
		s.rnext = seq + 1
		s.rpos = readPos{seg: seg, off: s.rfr.off, seq: seq}
		s.mu.Unlock()
		return Frame{Seq: seq, Payload: p}, nil
	}
}

// readPos is where a data frame ends on disk (see Spool.rpos).
type readPos struct {
	seg *segment
	off int64
	seq uint64
}

// notePosLocked records where the frame seq, handed out by Next, ends on disk, for a
// reader that starts again after it. mu held.
func (s *Spool) notePosLocked(seg *segment, end int64, seq uint64) {
	if seg != nil && seq >= s.rpos.seq {
		s.rpos = readPos{seg: seg, off: end, seq: seq}
	}
}

// putBuffer hands a payload read from disk and not handed out back to Options.Buffers.
func (s *Spool) putBuffer(p []byte) {
	if p != nil && s.opts.Buffers != nil {
		s.opts.Buffers.Put(p)
	}
}

// Replay calls fn for every frame with Seq >= from still on disk, acknowledged or not, in
// order. It is meant for startup, before Next and Append. Each Payload is a fresh slice.
func (s *Spool) Replay(from uint64, fn func(Frame) error) error {
	type span struct {
		path        string
		first, last uint64
		end         int64
	}
	s.mu.Lock()
	spans := make([]span, 0, len(s.segs))
	for _, seg := range s.segs {
		spans = append(spans, span{seg.path, seg.first, seg.last, seg.durEnd})
	}
	s.mu.Unlock()
	buf := make([]byte, 0, readBufSize)
	for _, sp := range spans {
		if sp.last < sp.first || sp.last < from {
			continue
		}
		if err := s.replaySegment(sp.path, sp.end, from, buf, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *Spool) replaySegment(path string, end int64, from uint64, buf []byte, fn func(Frame) error) error {
	f, err := s.fs.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Dropped (drop_oldest) since the spans were taken: its frames are gone by the
		// operator's choice, not a position error.
		return nil
	}
	if err != nil {
		return fmt.Errorf("spool: replay: segment %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	fr := newFrameReader(f, segHeaderSize, end, buf)
	fr.z = &s.z
	first, err := segFirst(f)
	if err != nil {
		return fmt.Errorf("spool: replay: segment %s: %w", filepath.Base(path), err)
	}
	last, allow := first-1, uint64(0)
	for {
		at := fr.off
		typ, seq, p, err := fr.next(true)
		if err == io.EOF {
			return nil
		}
		if err == nil && holdsSeq(typ) && (seq <= last || seq > last+1+allow) {
			fr.off = at
			err = fmt.Errorf("seq %d after %d: %w", seq, last, errCorrupt)
		}
		if errors.Is(err, errCorrupt) {
			found, a, rerr := fr.resync(at, last)
			if rerr != nil {
				return fmt.Errorf("spool: replay: segment %s: frame at %d: %w", filepath.Base(path), at, rerr)
			}
			if !found {
				s.corrupt("spool: corrupt frame skipped by replay", path, at, err)
				return nil
			}
			s.corrupt("spool: corrupt frame skipped by replay", path, at, err, "skipped_bytes", fr.off-at)
			allow = a
			continue
		}
		if err == nil && holdsSeq(typ) {
			last, allow = seq, 0
		}
		if err != nil {
			return fmt.Errorf("spool: replay: segment %s: frame at %d: %w", filepath.Base(path), at, err)
		}
		if holdsSeq(typ) && seq >= from {
			if err := fn(Frame{Seq: seq, Payload: p, Delivered: typ == frameDelivered}); err != nil {
				return err
			}
		}
	}
}

func (s *Spool) holdsSegment(seg *segment) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.segs {
		if c == seg {
			return true
		}
	}
	return false
}
