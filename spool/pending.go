package spool

import "bytes"

// Options.Write backlog: frames are kept in memory (s.pend) from Append until a commit
// makes them durable, and Next hands them out from there at once. The commit writes each
// one as it stands then: a frame not acknowledged yet as a data frame, as today; one the
// destination already acknowledged as a delivered frame of a few bytes (its Options.Stub),
// which keeps the seq order and the caller's positions on disk without the record. While
// the destination keeps up almost nothing reaches the disk but stubs; when it slows down or
// is cut, the frames pile up unacknowledged and are written exactly as in WriteAlways.

// pendFrame is a frame appended in backlog mode and not yet durable. s.pend holds seqs
// durable+1 to lastSeq in order; its first s.pendWritten entries were written by a commit
// whose fsync has not succeeded yet. mu held for every field.
type pendFrame struct {
	seq    uint64
	p      []byte // the payload; nil once acknowledged: the caller may recycle it from then on
	stub   []byte
	n      int64 // len(p) as counted in pendBytes
	shared bool  // p is the caller's (AppendShared): Next hands out the slice itself
	taken  bool  // handed out by Next
	acked  bool
	// Where the commit wrote it: the cache entry Next needs once it is durable.
	seg  *segment
	off  int64
	size int64
}

func (s *Spool) backlogMode() bool { return s.opts.Write == WriteBacklog }

// pendLimit bounds the bytes to write (see unsyncedLocked): past it Append commits first,
// and waits (retrying) while that commit fails, as a failed write makes it wait in
// WriteAlways.
func (s *Spool) pendLimit() int64 { return max(maxTailBytes, 2*s.opts.SyncBytes) }

// unsyncedLocked is what the next commit has to write and fsync: the frames in memory not
// acknowledged (an acknowledged one costs only its stub) and the written bytes not yet
// fsynced. It triggers commits (SyncBytes) and bounds memory (pendLimit) as the unsynced
// bytes do in WriteAlways. mu held.
func (s *Spool) unsyncedLocked() int64 {
	return s.pendDisk + s.act.end - s.act.durEnd
}

// pendOverLocked tells whether Append must commit before it adds a frame: too much to write,
// or too many records acknowledged since the last commit (what a crash would make the
// caller read and send again: bounded even while commits fail and the destination keeps
// up). mu held.
func (s *Spool) pendOverLocked() bool {
	return s.unsyncedLocked() >= s.pendLimit() || s.pendBytes >= 4*s.pendLimit()
}

// appendPending is Append in backlog mode: the frame goes to memory only. Called by
// appendOnce once room and rolls are settled; mu only, so appends go on during a commit's
// writes and fsync.
func (s *Spool) appendPending(payload []byte, share bool) (uint64, int64, error) {
	s.mu.Lock()
	over := s.pendOverLocked()
	s.mu.Unlock()
	if over {
		if err := s.commit(); err != nil {
			if s.isPoisoned() {
				return 0, 0, errPoisoned
			}
			return 0, 0, err
		}
		s.writeRecovered()
	}
	var stub []byte
	if s.opts.Stub != nil {
		stub = s.opts.Stub(payload)
	}
	p := payload
	if !share {
		p = bytes.Clone(payload)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, 0, ErrClosed
	}
	seq := s.lastSeq + 1
	s.lastSeq = seq
	s.pend = append(s.pend, pendFrame{seq: seq, p: p, n: int64(len(p)), stub: stub, shared: share})
	s.pendBytes += int64(len(p))
	s.pendDisk += frameSize(len(p))
	s.broadcastLocked() // a Next waiting for the next frame
	return seq, s.unsyncedLocked(), nil
}

// takePendingLocked hands out the next frame from memory when every durable one was
// returned. mu and rmu held.
func (s *Spool) takePendingLocked() (Frame, bool) {
	if !s.backlogMode() || len(s.pend) == 0 || s.rnext < s.pend[0].seq {
		return Frame{}, false
	}
	i := s.rnext - s.pend[0].seq
	if i >= uint64(len(s.pend)) {
		return Frame{}, false
	}
	e := &s.pend[i]
	e.taken = true
	s.inflight = append(s.inflight, inflight{seq: e.seq})
	s.rnext = e.seq + 1
	p := e.p
	if !e.shared {
		p = bytes.Clone(p) // Append's copy may still be written by a commit
	}
	return Frame{Seq: e.seq, Payload: p}, true
}

// pendingAckedLocked notes that the pending frame e was acknowledged: no commit will read its
// payload again, and it will not take room on disk. mu held.
func (s *Spool) pendingAckedLocked(e *pendFrame, written bool) {
	e.acked, e.p = true, nil
	if !written {
		s.pendDisk -= frameSize(int(e.n))
	}
}

// diskBytesLocked is what the spool holds on disk or is bound to write there: the segment
// files and the frames in memory not acknowledged yet (a commit writes them). Room for
// Append (MaxBytes, the Budget) is measured by it, so that frames kept in memory cannot let
// a backlog go past the bounds. mu held.
func (s *Spool) diskBytesLocked() int64 { return s.bytes + s.pendDisk }

// pendingLocked returns the pending frame seq, or nil. mu held.
func (s *Spool) pendingLocked(seq uint64) *pendFrame {
	if len(s.pend) == 0 || seq < s.pend[0].seq || seq-s.pend[0].seq >= uint64(len(s.pend)) {
		return nil
	}
	return &s.pend[seq-s.pend[0].seq]
}

// flushPendLocked writes the pending frames no commit wrote yet into seg: a delivered frame
// for each one acknowledged, the data frame for the others. The payloads written are read
// without mu: Ack of one of them waits until the writes are done (busyFrom..busyTo), since
// after its Ack the caller may reuse the memory. On a failed write the frames before it stay
// written and the rest are tried again by the next commit. syncMu and wmu held.
//
// With ackedOnly it writes only the acknowledged head of them, stubs (writeAcks, as soon as
// the cursor moves): in the page cache they survive a kill -9, so what the destination
// accepted is not read and sent again after a process crash, as in WriteAlways. No payload
// is read then. wmu held (syncMu too unless ackedOnly: a commit's fsync may be running, and
// claims only the bytes written before it started).
func (s *Spool) flushPendLocked(seg *segment, ackedOnly bool) error {
	s.mu.Lock()
	todo := s.pend[s.pendWritten:]
	if ackedOnly {
		i := 0
		for i < len(todo) && todo[i].acked {
			i++
		}
		todo = todo[:i]
	}
	if len(todo) == 0 {
		s.mu.Unlock()
		return nil
	}
	batch := append(s.flushBuf[:0], todo...)
	if !ackedOnly {
		s.busyFrom, s.busyTo = batch[0].seq, batch[len(batch)-1].seq
	}
	unacked := s.lastSeq - min(s.acked, s.lastSeq)
	s.mu.Unlock()
	var err error
	n := 0
	for i := range batch {
		e := &batch[i]
		off := seg.end
		if e.acked {
			_, err = s.writeFrameLocked(seg, frameDelivered, e.seq, e.stub, false)
		} else {
			// Copied into the tail, never kept by reference: the caller recycles a payload
			// once it is acknowledged, which may come before this frame's fsync.
			s.compressNext = s.opts.Compression != CompressNone &&
				(s.opts.CompressBacklog < 0 || int64(unacked)*int64(len(e.p)) > s.opts.CompressBacklog)
			_, err = s.writeFrameLocked(seg, frameData, e.seq, e.p, false)
		}
		if err != nil {
			break
		}
		e.seg, e.off, e.size = seg, off, seg.end-off
		n++
	}
	s.mu.Lock()
	for i := range n {
		p := &s.pend[s.pendWritten+i]
		p.seg, p.off, p.size = batch[i].seg, batch[i].off, batch[i].size
		if batch[i].acked {
			s.delivered++
			s.deliveredBytes += batch[i].n
		}
	}
	s.pendWritten += n
	for i := range n {
		if !batch[i].acked {
			s.pendDisk -= frameSize(int(batch[i].n)) // counted in s.bytes now
		}
	}
	s.busyFrom, s.busyTo = 0, 0
	s.broadcastLocked() // Acks waiting for the writes
	s.mu.Unlock()
	clear(batch)
	s.flushBuf = batch[:0]
	return err
}

// settleLocked drops the pending frames that are durable now. A frame Next has not handed
// out yet goes to the cache, so the reader takes it from memory rather than from disk. mu
// held.
func (s *Spool) settleLocked() {
	for len(s.pend) > 0 && s.pend[0].seq <= s.durable && s.pendWritten > 0 {
		e := s.pend[0]
		s.pend[0] = pendFrame{}
		s.pend = s.pend[1:]
		s.pendWritten--
		s.pendBytes -= e.n
		if !e.taken && !e.acked && e.shared && e.seg != nil {
			s.cache = append(s.cache, cachedFrame{seq: e.seq, seg: e.seg, off: e.off, size: e.size, p: e.p})
			s.cacheBytes += int64(len(e.p))
			for s.cacheBytes > s.opts.CacheBytes && len(s.cache) > 0 {
				s.dropCachedLocked(false)
			}
		}
	}
	if len(s.pend) == 0 {
		s.pend = s.pend[:0:0] // let the backing array go after a burst
	}
}
