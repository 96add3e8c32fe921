package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// roll seals the active segment (ack frame, fsync) and starts a new one.
func (s *Spool) roll() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.poisoned {
		return errPoisoned
	}
	seg := s.act
	if seg.f != nil {
		if seg.dirtyTail {
			if err := seg.f.Truncate(seg.end); err != nil {
				s.log.Warn("spool: truncate before roll failed", "segment", filepath.Base(seg.path), "err", err)
			} else {
				seg.dirtyTail = false
			}
		}
		if s.backlogMode() {
			// The frames in memory go into this segment: the next one starts after them.
			if err := s.flushPendLocked(seg, flushAll); err != nil {
				return err
			}
		}
		if err := s.writeAckLocked(seg); err != nil {
			return err
		}
		s.releasePreallocLocked(seg) // sealed: it never grows again
		if err := seg.f.Sync(); err != nil {
			return s.failSyncLocked(seg, err)
		}
		// Emptied before the frames are declared durable: a payload the tail refers to may
		// be recycled from then on (see dropCachedLocked).
		s.tail.reset()
		s.mu.Lock()
		seg.durEnd = seg.end
		s.durable = max(s.durable, seg.last)
		s.ackDurable = max(s.ackDurable, s.ackWritten)
		s.settleLocked()
		s.broadcastLocked()
		s.mu.Unlock()
	}
	if err := s.newSegmentLocked(s.lastSeq + 1); err != nil {
		return err // the old segment stays active
	}
	if seg.f != nil {
		if err := seg.f.Close(); err != nil {
			s.log.Warn("spool: close sealed segment", "segment", filepath.Base(seg.path), "err", err)
		}
		seg.f = nil
	}
	if s.backlogMode() {
		// In backlog mode commits do the writing, and this one wrote and fsynced every
		// frame in memory: it ends a failure episode as a background commit that works
		// does (the Append that rolled ends only its own failures, and the background's
		// next try may be seconds away with its backoff).
		s.writeRecovered()
	}
	return nil
}

func (s *Spool) writeAckLocked(seg *segment) error {
	s.mu.Lock()
	// Never past the frames on disk (in backlog mode acks run ahead of the writes): the
	// next frame written must follow the last one without a gap, and Open takes the next
	// seq from the cursor too.
	acked := min(s.acked, seg.last)
	s.mu.Unlock()
	if acked <= s.ackWritten {
		return nil
	}
	if _, err := s.writeFrameLocked(seg, frameAck, acked, nil, false); err != nil {
		return err
	}
	s.ackWritten = acked
	return nil
}

// failSyncLocked handles a failed fsync of the active segment seg. After a failed fsync
// Linux may have dropped the dirty pages (and reports the error once), so neither the file
// nor another fsync of it can be trusted: seg is poisoned, never written again, and the
// frames past its last durable offset are rewritten from s.tail into a new segment by
// repairLocked (now, or by the background goroutine with a backoff). Nothing is declared
// durable until that rewrite is fsynced. syncMu and wmu held.
func (s *Spool) failSyncLocked(seg *segment, err error) error {
	s.poisoned = true
	s.writeFailed(fmt.Errorf("segment %s: fsync: %w", filepath.Base(seg.path), err))
	return s.repairLocked()
}

// repairLocked rewrites the poisoned active segment's unsynced frames (s.tail) into a new
// segment and fsyncs it. The new segment starts at the first seq that is not durable. When
// the old segment holds no durable data frame the new file takes its name (the rename
// replaces it whole); otherwise the old one is cut back to its durable offset and sealed.
// On failure nothing changes and it is tried again. syncMu and wmu held.
func (s *Spool) repairLocked() error {
	if !s.poisoned {
		return nil
	}
	seg := s.act
	s.mu.Lock()
	durLast := max(seg.first-1, min(seg.last, s.durable))
	last := seg.last // in backlog mode frames after it are still in memory
	s.mu.Unlock()
	first := durLast + 1
	replace := durLast < seg.first
	if replace {
		first = seg.first
	}
	var hb [segHeaderSize]byte
	encodeSegHeader(hb[:], first)
	name := segName(first)
	path := filepath.Join(s.opts.Dir, name)
	fail := func(err error) error {
		if !replace {
			_ = s.fs.Remove(path) // holds nothing durable; a leftover is replaced by the next try
		}
		err = fmt.Errorf("spool: segment %s: rewrite unsynced frames: %w", name, err)
		s.writeFailed(err)
		return err
	}
	if err := writeFileAtomic(s.fs, s.opts.Dir, name, hb[:]); err != nil {
		return fail(err)
	}
	f, err := s.fs.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return fail(err)
	}
	at := int64(segHeaderSize)
	if err := s.tail.each(func(b []byte) error {
		_, err := f.WriteAt(b, at)
		at += int64(len(b))
		return err
	}); err != nil {
		_ = f.Close()
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fail(err)
	}
	nseg := &segment{first: first, last: first - 1, end: segHeaderSize + s.tail.len(), path: path, f: f}
	nseg.durEnd = nseg.end
	if last >= first {
		nseg.last = last
	}
	if seg.f != nil {
		if !replace {
			if err := seg.f.Truncate(seg.durEnd); err != nil {
				// Recovery cuts an older segment where the next one starts (see the package doc).
				s.log.Warn("spool: cut segment after failed fsync", "segment", filepath.Base(seg.path), "err", err)
			}
		}
		_ = seg.f.Close() // its error says nothing about data that now lives in the new segment
		seg.f = nil
	}
	off := seg.durEnd
	s.tail.reset() // before the frames are declared durable (see dropCachedLocked)
	s.mu.Lock()
	if replace {
		seg.gone = true
		s.segs = s.segs[:len(s.segs)-1]
		s.bytes -= seg.end
	} else {
		s.bytes -= seg.end - seg.durEnd
		seg.end = seg.durEnd
		seg.last = durLast
	}
	s.segs = append(s.segs, nseg)
	s.act = nseg
	s.bytes += nseg.end
	for i := range s.cache {
		if c := &s.cache[i]; c.seg == seg && c.off >= off {
			c.seg, c.off = nseg, c.off-off+segHeaderSize
		}
	}
	for i := range s.pend {
		if e := &s.pend[i]; e.seg == seg && e.off >= off {
			e.seg, e.off = nseg, e.off-off+segHeaderSize
		}
	}
	if r := &s.rpos; r.seg == seg && r.off > off {
		r.seg, r.off = nseg, r.off-off+segHeaderSize
	}
	s.durable = max(s.durable, nseg.last)
	s.ackDurable = max(s.ackDurable, s.ackWritten)
	s.settleLocked()
	s.setGauge()
	s.broadcastLocked()
	s.mu.Unlock()
	if replace {
		s.ackWritten = 0 // the durable ack frames of the replaced file are gone: write one again
	}
	s.poisoned = false
	s.log.Info("spool: unsynced frames rewritten into a new segment after a failed fsync",
		"segment", name, "first", first, "last", last, "bytes", nseg.end-segHeaderSize)
	s.writeRecovered()
	return nil
}

// repair retries repairLocked; the background goroutine calls it with a backoff.
func (s *Spool) repair() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.repairLocked()
}

func (s *Spool) isPoisoned() bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.poisoned
}

// commit makes everything written so far durable with one fsync, ack frame included. In
// backlog mode it first writes the pending frames mode selects (see flushMode).
func (s *Spool) commit(mode flushMode) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.wmu.Lock()
	if s.poisoned {
		err := s.repairLocked()
		s.wmu.Unlock()
		return err
	}
	seg := s.act
	if seg.f == nil {
		s.wmu.Unlock()
		return nil
	}
	if s.backlogMode() {
		if err := s.flushPendLocked(seg, mode); err != nil {
			s.wmu.Unlock()
			return err
		}
	}
	if err := s.writeAckLocked(seg); err != nil {
		s.wmu.Unlock()
		return err
	}
	s.mu.Lock()
	end, dur, last := seg.end, seg.durEnd, seg.last
	s.mu.Unlock()
	ackW := s.ackWritten
	s.wmu.Unlock()
	if end == dur {
		return nil
	}
	start := time.Now()
	// Appends go on while the fsync runs; only bytes below end are claimed durable after it.
	if err := seg.f.Sync(); err != nil {
		s.wmu.Lock()
		defer s.wmu.Unlock()
		return s.failSyncLocked(seg, err)
	}
	if d := time.Since(start); d > slowFsync {
		s.log.Warn("spool: slow fsync", "segment", filepath.Base(seg.path), "took", d, "bytes", end-dur)
	}
	s.wmu.Lock()
	// Appends went on during the fsync: only the bytes it covered leave the tail copy.
	s.tail.trim(end - dur) // before they are declared durable (see dropCachedLocked)
	s.mu.Lock()
	seg.durEnd = end
	s.durable = max(s.durable, last)
	s.ackDurable = max(s.ackDurable, ackW)
	s.settleLocked()
	s.setGauge() // once per commit, not per frame
	s.broadcastLocked()
	s.mu.Unlock()
	s.wmu.Unlock()
	return nil
}

// Sync makes everything appended so far durable (in backlog mode the frames in flight too,
// however young). After a failed fsync it rewrites the unsynced frames into a new segment
// first; its error means they are not durable yet (the background goroutine keeps trying).
func (s *Spool) Sync() error {
	return s.commit(flushAll)
}

// SyncSoon asks the background goroutine to commit now rather than within FsyncInterval,
// without waiting for it: the caller's frame leaves sooner, and an appender that calls it for
// every frame never waits on the disk (commits asked for during one coalesce into the next).
//
// With Options.Write backlog it does nothing: Next hands frames out before they are
// durable, and an early commit would only write frames the destination is about to
// acknowledge.
func (s *Spool) SyncSoon() {
	if !s.backlogMode() {
		s.kick()
	}
}

func (s *Spool) run() {
	defer close(s.stopped)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var timerC <-chan time.Time
	var wait time.Duration // backoff of the rewrite after a failed fsync, or of a failed commit
	var commitErr error    // what the last failed commit reported to writeFailed
	for {
		select {
		case <-s.stop:
			timer.Stop()
			return
		case <-s.ackc:
			s.writeAcks()
			if timerC == nil && s.opts.FsyncInterval > 0 {
				timer.Reset(s.opts.FsyncInterval)
				timerC = timer.C
			}
			continue
		case <-s.maintc:
			s.maintain()
			continue
		case <-s.dirtyc:
			if timerC == nil && s.opts.FsyncInterval > 0 {
				timer.Reset(s.opts.FsyncInterval)
				timerC = timer.C
			}
			continue
		case <-s.kickc:
		case <-timerC:
		}
		timer.Stop()
		timerC = nil
		err := s.commit(flushDue)
		poisoned := s.isPoisoned()
		if err != nil && !poisoned {
			commitErr = fmt.Errorf("group commit: %w", err)
			s.writeFailed(commitErr)
		} else if err == nil && s.backlogMode() {
			// Commits do the writing in backlog mode: one that works ends the episode.
			s.writeRecovered()
			commitErr = nil
		} else if err == nil && commitErr != nil {
			// The episode was the commit's alone (an ack frame), unless an Append failed since.
			s.writeRecoveredFrom(commitErr)
			commitErr = nil
		}
		s.checkLock()
		s.maintain()
		if err != nil || poisoned {
			// Try again later: the rewrite after a failed fsync, or a commit whose write
			// failed (nothing else may come to trigger one, and its frames stay undurable
			// and unshipped until one succeeds). writeFailed logs, not every attempt.
			wait = min(max(2*wait, writeRetryMin), writeRetryMax)
			timer.Reset(wait)
			timerC = timer.C
		} else {
			wait = 0
			if s.opts.FsyncInterval > 0 && s.unwrittenPending() {
				// Frames too young for this commit: the next one writes them unless they
				// are acknowledged by then, even if nothing else comes to arm the timer.
				timer.Reset(s.opts.FsyncInterval)
				timerC = timer.C
			}
		}
	}
}

// maintain deletes the oldest segments whose frames are all durably acknowledged and covered
// by the caller's checkpoint.
func (s *Spool) maintain() {
	s.mu.Lock()
	limit := min(s.ackDurable, s.checkpoint)
	var del []*segment
	for len(s.segs) > 1 && s.segs[0] != s.act && s.segs[0].last <= limit {
		s.segs[0].gone = true
		del = append(del, s.segs[0])
		s.bytes -= s.segs[0].end
		s.segs = s.segs[1:]
	}
	s.mu.Unlock()
	if len(del) == 0 {
		return
	}
	for _, seg := range del {
		if err := s.fs.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Error("spool: delete segment", "segment", filepath.Base(seg.path), "err", err)
		}
	}
	if err := s.fs.SyncDir(s.opts.Dir); err != nil {
		s.log.Error("spool: fsync dir after delete", "err", err)
	}
	s.mu.Lock()
	s.setGauge()
	s.broadcastLocked()
	s.mu.Unlock()
}
