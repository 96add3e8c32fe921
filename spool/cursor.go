package spool

import (
	"fmt"
	"sort"
)

type inflight struct {
	seq   uint64
	acked bool
}

// Checkpoint says file positions covering every frame <= seq are saved elsewhere, so segments
// up to it may be deleted once acknowledged. Not persisted: call it after each save.
// DropOldest overrides it when the spool is full (see the package doc).
func (s *Spool) Checkpoint(seq uint64) {
	s.mu.Lock()
	if seq > s.checkpoint {
		s.checkpoint = seq
		if s.full {
			s.broadcastLocked() // a waiting Append may now seal the active segment
		}
	}
	s.mu.Unlock()
	if s.backlogMode() {
		// Only the deletion is due: a commit now would write the frames the destination is
		// about to acknowledge.
		select {
		case s.maintc <- struct{}{}:
		default:
		}
		return
	}
	s.kick()
}

// Ack marks a frame returned by Next as delivered. Acks may come in any order and from several
// goroutines; acking a frame at or below the cursor again is a no-op.
func (s *Spool) Ack(seq uint64) error {
	_, err := s.AckFrame(seq)
	return err
}

// AckFrame is Ack for a caller that recycles the payloads of AppendShared: reuse says
// whether the payload Next returned for seq may be reused now. It may not while a commit
// wrote the frame from that memory and its fsync has not succeeded yet (backlog mode): the
// spool keeps it by reference for the rewrite a failed fsync needs, and hands it to
// Options.Buffers itself once the frame is durable (without Buffers, to the garbage
// collector).
func (s *Spool) AckFrame(seq uint64) (reuse bool, _ error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for seq > s.acked && s.busyFrom <= seq && seq <= s.busyTo {
		// A commit is writing this frame from the caller's memory, which the caller may
		// reuse once the Ack returns: wait for the writes (page cache, no fsync).
		ch := s.changed
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	if seq <= s.acked {
		return false, nil // acknowledged before (or dropped): the first Ack said
	}
	q := s.inflight[s.inHead:]
	i := sort.Search(len(q), func(i int) bool { return q[i].seq >= seq })
	if i == len(q) || q[i].seq != seq {
		return false, fmt.Errorf("spool: ack %d: not returned by Next", seq)
	}
	if q[i].acked {
		return false, nil // acknowledged before, above the cursor: the first Ack said
	}
	q[i].acked = true
	reuse = true
	if e := s.pendingLocked(seq); e != nil && !e.acked {
		// Unless a commit wrote it already, the next one writes its stub instead.
		reuse = !e.pinned || !e.shared // pending frames are not durable
		s.pendingAckedLocked(e, e.seg != nil)
	}
	if s.advanceLocked() {
		if s.full {
			s.kick()
		} else {
			s.acked1()
		}
	}
	return reuse, nil
}

// advanceLocked moves the cursor over the acknowledged head of inflight, and drops inflight
// entries at or below the cursor (frames dropped by drop_oldest while in flight: their acks
// are no-ops). It reports whether the cursor moved. mu held.
func (s *Spool) advanceLocked() bool {
	moved := false
	for s.inHead < len(s.inflight) {
		e := s.inflight[s.inHead]
		if e.seq > s.acked && !e.acked {
			break
		}
		if e.seq > s.acked {
			s.acked = e.seq
			moved = true
		}
		s.inHead++
	}
	switch {
	case s.inHead == len(s.inflight):
		s.inflight, s.inHead = s.inflight[:0], 0
	case s.inHead > 256 && s.inHead > len(s.inflight)/2:
		n := copy(s.inflight, s.inflight[s.inHead:])
		s.inflight, s.inHead = s.inflight[:n], 0
	}
	return moved
}

// Pending returns how many frames Next would return now without blocking: durable ones, and
// with Options.Write backlog every frame appended.
func (s *Spool) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backlogMode() {
		if s.lastSeq < s.rnext {
			return 0
		}
		return int(s.lastSeq - s.rnext + 1)
	}
	if s.durable < s.rnext {
		return 0
	}
	return int(s.durable - s.rnext + 1)
}

// AckedThrough returns the acknowledged cursor: every seq at or below it is acknowledged.
func (s *Spool) AckedThrough() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}
