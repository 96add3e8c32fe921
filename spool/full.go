package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

func (s *Spool) waitRoom(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if s.lockLost.Load() {
			s.mu.Unlock()
			return fmt.Errorf("spool: append: %s: %w", s.opts.Dir, ErrLockLost)
		}
		room, budgetc := s.roomLocked()
		if room || !s.holdsDataLocked() {
			s.full = false
			s.mu.Unlock()
			return nil
		}
		s.full = true
		act := s.act
		// Only the active segment is left to free: seal it so the deleter may take it.
		canRoll := len(s.segs) == 1 && act.last >= act.first && act.last <= min(s.acked, s.checkpoint)
		ch := s.changed
		s.mu.Unlock()
		if canRoll {
			if err := s.roll(); err != nil {
				return err
			}
		}
		s.kick()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		case <-budgetc: // another spool freed bytes
		}
	}
}

// dropRoom makes room for an Append under drop_oldest: while the spool holds MaxBytes or
// more, the oldest sealed segment is deleted whether or not its frames were acknowledged (or
// covered by a checkpoint), and when only the active segment holds data it is sealed first.
// It never waits. The cursor moves past every dropped frame, so Next skips them, their acks
// become no-ops and the next ack frame persists the move. One log line per call, not per
// frame or segment.
func (s *Spool) dropRoom() error {
	var ev dropEvent
	defer s.logDrop(&ev)
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if room, _ := s.roomLocked(); room || !s.holdsDataLocked() {
			s.mu.Unlock()
			return nil
		}
		if s.segs[0] == s.act {
			s.mu.Unlock()
			// Only the active segment holds data: seal it, so that it can be dropped whole.
			if err := s.roll(); err != nil {
				return fmt.Errorf("spool: drop oldest: %w", err)
			}
			continue
		}
		seg := s.dropOldestLocked(&ev)
		s.mu.Unlock()
		if err := s.fs.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			// Its bytes are no longer counted; a leftover file is swept as an old segment at
			// the next Open (its frames are below the cursor by then).
			s.log.Error("spool: delete dropped segment", "segment", filepath.Base(seg.path), "err", err)
		}
		if err := s.fs.SyncDir(s.opts.Dir); err != nil {
			s.log.Error("spool: fsync dir after drop", "err", err)
		}
	}
}

// dropEvent sums up what one dropRoom call dropped, for its one log line and the metrics.
type dropEvent struct {
	segments    int
	frames      uint64
	bytes       int64
	first, last uint64 // range of dropped unacknowledged seqs
}

// dropOldestLocked takes the oldest segment (not the active one) out of the spool, moves the
// cursor past it and counts its unacknowledged frames as dropped. mu held; the caller deletes
// the file.
func (s *Spool) dropOldestLocked(ev *dropEvent) *segment {
	seg := s.segs[0]
	s.segs[0] = nil
	s.segs = s.segs[1:]
	seg.gone = true
	s.bytes -= seg.end
	from := max(seg.first, s.acked+1)
	if seg.last >= from {
		n := seg.last - from + 1
		// Frames acked out of order above the cursor were delivered: not dropped.
		for _, e := range s.inflight[s.inHead:] {
			if e.acked && e.seq >= from && e.seq <= seg.last {
				n--
			}
		}
		if ev.frames == 0 && n > 0 {
			ev.first = from
		}
		if n > 0 {
			ev.last = seg.last
		}
		ev.frames += n
		s.acked = seg.last
		s.advanceLocked()
		s.dirty() // the moved cursor goes into the next ack frame
	}
	ev.segments++
	ev.bytes += seg.end
	s.rnext = max(s.rnext, s.acked+1)
	for len(s.cache) > 0 && s.cache[0].seq <= seg.last {
		s.dropCachedLocked(false)
	}
	s.setGauge()
	s.broadcastLocked() // a Next reading the dropped segment moves on
	return seg
}

func (s *Spool) logDrop(ev *dropEvent) {
	if ev.segments == 0 {
		return
	}
	s.m.SpoolDropped.Add(float64(ev.frames))
	s.m.SpoolDroppedBytes.Add(float64(ev.bytes))
	s.log.Warn("spool: full, dropped oldest unacknowledged frames (when_full: drop_oldest)",
		"frames", ev.frames, "bytes", ev.bytes, "segments", ev.segments,
		"first_seq", ev.first, "last_seq", ev.last, "max_bytes", s.opts.MaxBytes, "global_max_bytes", s.budgetMax())
}

// holdsDataLocked tells whether any data frame is on disk: if none is, nothing can ever be
// freed by waiting, so a MaxBytes below the size of empty segments must not block. mu held.
func (s *Spool) holdsDataLocked() bool {
	if s.pendDisk > 0 {
		return true // frames in memory that a commit will write, or an ack free
	}
	for _, seg := range s.segs {
		if seg.last >= seg.first {
			return true
		}
	}
	return false
}
