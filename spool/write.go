package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// newSegmentLocked creates the segment whose first data frame will be first and makes it the
// active one. syncMu and wmu must be held (or the spool not yet shared).
func (s *Spool) newSegmentLocked(first uint64) error {
	var hb [segHeaderSize]byte
	encodeSegHeader(hb[:], first)
	name := segName(first)
	if err := writeFileAtomic(s.fs, s.opts.Dir, name, hb[:]); err != nil {
		return fmt.Errorf("spool: segment %s: create: %w", name, err)
	}
	path := filepath.Join(s.opts.Dir, name)
	f, err := s.fs.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("spool: segment %s: open: %w", name, err)
	}
	seg := &segment{first: first, last: first - 1, end: segHeaderSize, durEnd: segHeaderSize, path: path, f: f}
	s.mu.Lock()
	s.segs = append(s.segs, seg)
	s.act = seg
	s.bytes += segHeaderSize
	s.mu.Unlock()
	return nil
}

// writeFrameLocked appends one frame to seg. On failure nothing of it is left for recovery
// to take as data: the file is truncated back, or else the next frame overwrites it. The
// frame's bytes stay in s.tail until a commit makes them durable; shared says p is handed
// over (AppendShared) and may be kept there by reference instead of copied, which pinned
// reports. wmu held.
func (s *Spool) writeFrameLocked(seg *segment, typ byte, seq uint64, p []byte, shared bool) (pinned bool, _ error) {
	off := seg.end
	raw := len(p)
	mark := s.tail.mark()
	if typ == frameData {
		s.preallocLocked(seg, off+frameSize(len(p))) // compressed, it takes no more
	}
	var n int64
	var err error
	written := false
	if typ == frameData && s.compressNext {
		// Encoded straight into the tail's memory, which is then written as is: the stored
		// form is neither copied into the tail nor assembled in a scratch buffer.
		if m := s.z.maxEncodedLen(s.opts.Compression, len(p)); m >= 0 {
			b := s.tail.alloc(frameHeaderSize + m + 8)
			if z, codec := s.z.compressTo(s.opts.Compression, b[frameHeaderSize:frameHeaderSize+m], p); codec != CompressNone {
				n = frameSize(len(z))
				encodeFrameHeaderCodec(b[:frameHeaderSize], typ, codec, seq, z)
				clear(b[frameHeaderSize+len(z) : n])
				s.tail.shrinkLast(int(n))
				_, err = seg.f.WriteAt(b[:n], off)
				written = true
			} else {
				s.tail.unwind(mark) // stored raw
			}
		}
	}
	if !written {
		n = frameSize(len(p))
		if n <= scratchBytes || !shared {
			// One write of the frame assembled in the tail (the copy the tail needs anyway).
			b := s.tail.alloc(int(n))
			encodeFrameHeaderCodec(b[:frameHeaderSize], typ, CompressNone, seq, p)
			copy(b[frameHeaderSize:], p)
			clear(b[frameHeaderSize+len(p):])
			_, err = seg.f.WriteAt(b, off)
		} else {
			// A large payload the caller handed over is written from its own slice and
			// kept by reference: copied only by the kernel.
			h := s.tail.alloc(frameHeaderSize)
			encodeFrameHeaderCodec(h, typ, CompressNone, seq, p)
			s.tail.ref(p)
			pinned = true
			pad := s.zeros[:pad8(len(p))]
			s.tail.ref(pad)
			if _, err = seg.f.WriteAt(h, off); err == nil {
				if _, err = seg.f.WriteAt(p, off+frameHeaderSize); err == nil && len(pad) > 0 {
					_, err = seg.f.WriteAt(pad, off+frameHeaderSize+int64(len(p)))
				}
			}
		}
	}
	if err != nil {
		s.tail.unwind(mark)
		if terr := seg.f.Truncate(off); terr != nil {
			seg.dirtyTail = true
		}
		return false, fmt.Errorf("spool: segment %s: frame at %d: write: %w", filepath.Base(seg.path), off, err)
	}
	s.mu.Lock()
	seg.end += n
	s.bytes += n
	if holdsSeq(typ) {
		seg.last = seq
		s.lastSeq = max(s.lastSeq, seq) // in backlog mode Append moved it already
	}
	s.mu.Unlock()
	if typ == frameData {
		s.m.SpoolAppendedBytes.Add(float64(raw))
		s.m.SpoolStoredBytes.Add(float64(n))
	}
	return pinned, nil
}

// Append copies payload into a new frame and returns its sequence number. The frame is not
// durable on return; it is after the next group commit or Sync. Append blocks while the spool
// holds MaxBytes or more, until acks free a segment or ctx is done; with DropOldest it drops
// the oldest segments instead and never waits (see the package doc). A write error is not
// returned: Append retries (with a backoff, logged and counted) until it succeeds, ctx is
// done or the spool is closed.
func (s *Spool) Append(ctx context.Context, payload []byte) (uint64, error) {
	return s.append(ctx, payload, false)
}

// AppendShared is Append for a payload the caller hands over: it must not be modified
// afterwards. The spool may keep it in memory and return the same slice from Next: in
// WriteBacklog mode until Next hands it out (the destination keeps up: no copy, no read),
// and in its cache (Options.CacheBytes) once written, which spares reading recent frames
// back from disk.
func (s *Spool) AppendShared(ctx context.Context, payload []byte) (uint64, error) {
	return s.append(ctx, payload, s.opts.CacheBytes > 0 || s.opts.Write == WriteBacklog)
}

func (s *Spool) append(ctx context.Context, payload []byte, share bool) (uint64, error) {
	if len(payload) > MaxPayload {
		return 0, fmt.Errorf("spool: append: payload of %d bytes exceeds %d", len(payload), MaxPayload)
	}
	// A write error (a full disk above all) is not the caller's to handle: Append blocks and
	// tries again, which stops the tailer, whose files are the buffer meanwhile.
	var wait time.Duration
	var failed error // this Append's last failure, as recorded
	for {
		seq, unsynced, err := s.appendOnce(ctx, payload, share)
		if err == nil {
			if !s.backlogMode() {
				s.writeRecovered()
			} else if failed != nil {
				// In backlog mode an Append writes only when it rolls or must commit first:
				// its success ends only an episode of its own failures, not one of the
				// background commits (those end it when one works).
				s.writeRecoveredFrom(failed)
			}
			if !s.backlogMode() && unsynced >= max(maxTailBytes, 2*s.opts.SyncBytes) {
				// The frame is appended whatever this commit does: a failure is retried
				// (and logged) by the repair, not reported for this frame.
				if err := s.commit(flushAll); err != nil && !s.isPoisoned() {
					s.writeFailed(fmt.Errorf("commit: %w", err))
				}
			}
			return seq, nil
		}
		if errors.Is(err, ErrClosed) || errors.Is(err, ErrLockLost) || ctx.Err() != nil {
			return 0, err
		}
		if !errors.Is(err, errPoisoned) {
			s.writeFailed(err)
			failed = err
		}
		wait = min(max(2*wait, writeRetryMin), writeRetryMax)
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-ch: // a repair or Close
		case <-t.C:
		}
		t.Stop()
	}
}

// appendOnce tries to append once; it also returns the bytes of the active segment not yet
// synced.
func (s *Spool) appendOnce(ctx context.Context, payload []byte, share bool) (seq uint64, unsynced int64, err error) {
	if s.lockLost.Load() {
		return 0, 0, fmt.Errorf("spool: append: %s: %w", s.opts.Dir, ErrLockLost)
	}
	s.wmu.Lock()
	poisoned := s.poisoned
	s.wmu.Unlock()
	if poisoned {
		s.kick()
		return 0, 0, errPoisoned
	}
	if s.opts.MaxBytes > 0 && s.opts.DropOldest {
		if err := s.dropRoom(); err != nil {
			return 0, 0, err
		}
	} else if s.opts.MaxBytes > 0 {
		if err := s.waitRoom(ctx); err != nil {
			return 0, 0, err
		}
	}
	s.wmu.Lock()
	s.mu.Lock()
	// Frames in memory that a commit will write count as in the segment already (backlog
	// mode), so that a commit never fills a segment far past SegmentBytes.
	end, holds := s.act.end+s.pendDisk, s.act.last >= s.act.first || s.pendDisk > 0
	s.mu.Unlock()
	needRoll := !s.poisoned && (s.act.f == nil || (end >= s.opts.SegmentBytes && holds))
	s.wmu.Unlock()
	if needRoll {
		if err := s.roll(); err != nil {
			return 0, 0, err
		}
	}
	if s.backlogMode() {
		// No early commit at SyncBytes: the frames in memory are written once they are a
		// backlog, or past the bounds (appendPending), whatever their bytes.
		seq, unsynced, err = s.appendPending(ctx, payload, share)
		if err == nil {
			s.dirty()
		}
		return seq, unsynced, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.poisoned {
		return 0, 0, errPoisoned
	}
	s.mu.Lock()
	closed := s.closed
	unacked := s.lastSeq - min(s.acked, s.lastSeq)
	s.mu.Unlock()
	if closed {
		return 0, 0, ErrClosed
	}
	s.compressNext = s.opts.Compression != CompressNone &&
		(s.opts.CompressBacklog < 0 || int64(unacked)*int64(len(payload)) > s.opts.CompressBacklog)
	seg := s.act
	if seg.f == nil {
		return 0, 0, fmt.Errorf("spool: append: no writable segment")
	}
	seq = s.lastSeq + 1
	off := seg.end
	pinned, err := s.writeFrameLocked(seg, frameData, seq, payload, share)
	if err != nil {
		return 0, 0, err
	}
	s.mu.Lock()
	unsynced = seg.end - seg.durEnd
	if share {
		s.cache = append(s.cache, cachedFrame{seq: seq, seg: seg, off: off, size: seg.end - off, p: payload, pinned: pinned})
		s.cacheBytes += int64(len(payload))
		for s.cacheBytes > s.opts.CacheBytes && len(s.cache) > 0 {
			s.dropCachedLocked(false)
		}
	}
	s.mu.Unlock()
	if s.opts.SyncBytes > 0 && unsynced >= s.opts.SyncBytes {
		s.kick()
	} else {
		s.dirty()
	}
	return seq, unsynced, nil
}

// writeFailed records a failed write or fsync: counted every time, logged when writes start
// failing and then at most once per writeErrRemind.
func (s *Spool) writeFailed(err error) {
	s.m.SpoolWriteErrors.Inc()
	now := time.Now()
	s.mu.Lock()
	first := s.writeErr == nil
	if first {
		s.errSince = now
		s.errCount = 0
	}
	s.writeErr = err
	s.failing.Store(true)
	s.errCount++
	remind := !first && now.Sub(s.errRemind) >= writeErrRemind
	if first || remind {
		s.errRemind = now
	}
	since, count := s.errSince, s.errCount
	s.mu.Unlock()
	switch {
	case first:
		s.log.Error("spool: write failed; appends wait and retry until it succeeds (disk full?)", "dir", s.opts.Dir, "err", err)
	case remind:
		s.log.Error("spool: writes still failing; appends are waiting", "dir", s.opts.Dir, "since", since, "failures", count, "err", err)
	}
}

// writeRecovered ends a write-failure episode with one log line.
func (s *Spool) writeRecovered() { s.writeRecoveredFrom(nil) }

// writeRecoveredFrom is writeRecovered, but when only is not nil only if the last failure
// recorded is only: a commit that works again does not end an episode in which Appends fail.
func (s *Spool) writeRecoveredFrom(only error) {
	if !s.failing.Load() {
		return
	}
	s.mu.Lock()
	if s.writeErr == nil || (only != nil && s.writeErr != only) {
		s.mu.Unlock()
		return
	}
	since, count := s.errSince, s.errCount
	s.writeErr = nil
	s.failing.Store(false)
	s.mu.Unlock()
	s.log.Info("spool: writes succeed again", "dir", s.opts.Dir, "failing_for", time.Since(since).Round(time.Millisecond), "failures", count)
}
