package spool

import "time"

// Acks are written as soon as the cursor moves, not only at the next group commit: an ack
// frame in the page cache survives a process crash (kill -9), so what the destination
// accepted is not shipped again after a restart. The fsync that makes the frame survive a
// power loss stays with the group commit (within FsyncInterval): one small write per burst
// of acks, no extra fsync.

// acked1 asks the background goroutine to write the moved cursor; calls coalesce.
func (s *Spool) acked1() {
	select {
	case s.ackc <- struct{}{}:
	default:
	}
}

// writeAcks appends an ack frame for the cursor if it moved since the last one written. It
// is not durable until the next commit. A failed write is reported by nothing here: the
// commit writes the frame again (ackWritten did not move) and reports its own failure.
func (s *Spool) writeAcks() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.act == nil || s.act.f == nil {
		return
	}
	if s.backlogMode() && !s.poisoned {
		// The stubs of the frames just acknowledged first: the ack frame may only cover
		// seqs on disk (writeAckLocked).
		if err := s.flushPendLocked(s.act, flushAcked); err != nil {
			if now := time.Now(); now.Sub(s.ackErrLogged) >= writeErrRemind {
				s.ackErrLogged = now
				s.log.Warn("spool: writing delivered stubs failed; the next commit writes them again", "err", err)
			}
			return
		}
	}
	if err := s.writeAckLocked(s.act); err != nil {
		// Acks come in bursts all the time: one line per writeErrRemind, not one per burst
		// while the disk is full (the commit's failure is counted and logged on its own).
		if now := time.Now(); now.Sub(s.ackErrLogged) >= writeErrRemind {
			s.ackErrLogged = now
			s.log.Warn("spool: writing an ack frame failed; the next commit writes it again", "err", err)
		}
	}
}
