package spool

import (
	"bytes"
	"context"
	"time"
)

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
	at     time.Time // when Append took it: a group commit writes it only once it is a backlog
	p      []byte    // the payload; nil once acknowledged: the caller may recycle it from then on
	stub   []byte
	n      int64 // len(p) as counted in pendHeld and pendAcked
	shared bool  // p is the caller's (AppendShared): Next hands out the slice itself
	// pinned: a commit wrote it from p and the tail refers to p until the fsync: the
	// caller must not recycle p before it is durable (AckFrame), the spool does then.
	pinned bool
	taken  bool // handed out by Next
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

// MaxHeldBytes bounds the payloads of the frames Append keeps in memory that Next has not
// handed out yet (pendHeld): the flow's lead over its shipper. Past it Append waits for Next
// while the destination keeps up, and writes them when it does not (appendPending). The
// shipper fills a request from the frames pending when one of its requests returns, so the
// lead is also what a request carries while the destination keeps up, and what the
// requests in flight hold: about max_in_flight leads, not max_in_flight × max_request_bytes.
// One full aggregate (1 MiB at the defaults: a lone frame always fits) it is. Measured on
// 512 MiB, 2 cores, one P, the same runs: to a fast Kinesis endpoint over TLS 4 MiB sent ~190
// requests, 1 MiB 536 (one record each) at the same CPU and speed (0.95–0.98 CPU s, 1.0 s),
// and peak RSS fell from 56–58 to 47 MiB; to kinesalite (100 MiB) 1 MiB took 0.22–0.24 CPU s
// against 0.27–0.28 and 0.8 s against 1.7, at 43 MiB against 61. What a large lead buys is
// fewer requests per GB, which cost the agent little (signing and sending are per byte;
// kinesisapi's BenchmarkPutRecordsSmall: ~50 µs a request) and Kinesis bills by the byte.
// A destination slower than the reader makes a backlog whatever the lead (frames older than
// FsyncInterval are written), and Next drains a backlog from disk in full requests.
const MaxHeldBytes = 1 << 20

// unsyncedLocked is what the next commit may have to write and fsync out of the spool's own
// memory: the frames not handed out yet (those in flight are the shipper's to bound: a
// commit writes them only once they are a backlog) and the written bytes not yet fsynced.
// mu held.
func (s *Spool) unsyncedLocked() int64 {
	return s.pendHeld + s.act.end - s.act.durEnd
}

// pendOverLocked tells whether Append must commit before it adds a frame: too much to write
// (everything is written then), or too many records acknowledged since the last commit
// (what a crash would make the caller read and send again: bounded even while commits fail
// and the destination keeps up). mu held.
func (s *Spool) pendOverLocked() (toWrite, acked bool) {
	return s.unsyncedLocked() >= s.pendLimit(), s.pendAcked >= 4*s.pendLimit()
}

// heldWaitLocked tells how long Append must wait before it keeps n more bytes in memory: 0
// when there is room under MaxHeldBytes (a lone frame always fits), or when the destination
// does not keep up, i.e. the oldest frame neither written nor acknowledged is a backlog
// (appended FsyncInterval ago or more; with no timed commits, at once), which all says to
// commit everything (backlog). mu held.
func (s *Spool) heldWaitLocked(n int) (wait time.Duration, backlog bool) {
	if s.pendHeld == 0 || s.pendHeld+int64(n) <= MaxHeldBytes {
		return 0, false
	}
	if s.opts.FsyncInterval <= 0 {
		return 0, true
	}
	for i := s.pendWritten; i < len(s.pend); i++ {
		if e := &s.pend[i]; !e.acked {
			wait = e.at.Add(s.opts.FsyncInterval).Sub(s.now())
			break
		}
	}
	if wait <= 0 {
		return 0, true
	}
	return wait, false
}

// appendPending is Append in backlog mode: the frame goes to memory only. Called by
// appendOnce once room and rolls are settled; mu only, so appends go on during a commit's
// writes and fsync. While the frames not handed out reach MaxHeldBytes it waits for Next
// (the destination keeps up: backpressure costs nothing, writing them would) until the
// oldest frame waiting is a backlog; then, or past pendLimit, it commits everything first,
// and waits (retrying) while that commit fails.
func (s *Spool) appendPending(ctx context.Context, payload []byte, share bool) (uint64, int64, error) {
	triedDue := false
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return 0, 0, ErrClosed
		}
		over, ackedOver := s.pendOverLocked()
		wait, backlog := s.heldWaitLocked(len(payload))
		ch := s.changed
		s.heldWaiting = wait > 0
		s.mu.Unlock()
		mode := flushAll
		if !over && !backlog && ackedOver && !triedDue {
			// Their stubs and what is due will do, unless a frame in flight before them
			// holds them back (then everything goes, below).
			mode, triedDue = flushDue, true
		}
		if over || backlog || ackedOver {
			if err := s.commit(mode); err != nil {
				if s.isPoisoned() {
					return 0, 0, errPoisoned
				}
				return 0, 0, err
			}
			s.writeRecovered()
			if mode == flushDue {
				continue
			}
			break
		}
		if wait == 0 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, 0, ctx.Err()
		case <-ch: // Next took a frame, or Close
		case <-t.C:
		}
		t.Stop()
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
	s.pend = append(s.pend, pendFrame{seq: seq, at: s.now(), p: p, n: int64(len(p)), stub: stub, shared: share})
	s.pendHeld += int64(len(p))
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
	if i >= uint64(s.pendWritten) {
		s.pendHeld -= e.n // not yet in the tail (flushPendLocked counts it if it is being written)
	}
	if s.heldWaiting {
		s.heldWaiting = false
		s.broadcastLocked() // an Append waiting for room in memory
	}
	s.inflight = append(s.inflight, inflight{seq: e.seq})
	s.rnext = e.seq + 1
	if e.seg != nil {
		s.notePosLocked(e.seg, e.off+e.size, e.seq)
	}
	p := e.p
	if !e.shared {
		p = bytes.Clone(p) // Append's copy may still be written by a commit
	}
	return Frame{Seq: e.seq, Payload: p}, true
}

// pendingAckedLocked notes that the pending frame e was acknowledged: no commit will read its
// payload again, and it will not take room on disk. A payload of the caller's that the tail
// still refers to is kept, for settleLocked to recycle once durable. mu held.
func (s *Spool) pendingAckedLocked(e *pendFrame, written bool) {
	e.acked = true
	if !e.pinned || !e.shared {
		e.p = nil
	}
	s.pendAcked += e.n
	if !written {
		s.pendDisk -= frameSize(int(e.n))
	}
}

// diskBytesLocked is what the spool holds on disk or is bound to write there: the segment
// files and the frames in memory not acknowledged yet (a commit writes them). Room for
// Append (MaxBytes, the Budget) is measured by it, so that frames kept in memory cannot let
// a backlog go past the bounds. mu held.
func (s *Spool) diskBytesLocked() int64 { return s.bytes + s.pendDisk }

// unwrittenPending tells whether pending frames wait for a commit to write them.
func (s *Spool) unwrittenPending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pend) > s.pendWritten
}

// pendingLocked returns the pending frame seq, or nil. mu held.
func (s *Spool) pendingLocked(seq uint64) *pendFrame {
	if len(s.pend) == 0 || seq < s.pend[0].seq || seq-s.pend[0].seq >= uint64(len(s.pend)) {
		return nil
	}
	return &s.pend[seq-s.pend[0].seq]
}

// flushMode says which of the pending frames a flushPendLocked writes. Always a prefix of
// them in seq order: Durable is the end of what a commit wrote, and the caller's positions
// (saved up to Durable) must never cover a frame that is neither on disk nor acknowledged.
type flushMode uint8

const (
	// flushAcked writes the acknowledged head as stubs (writeAcks, as the cursor moves).
	flushAcked flushMode = iota
	// flushDue is the group commit's: the acknowledged frames as stubs, and the frames not
	// acknowledged once they are a backlog, i.e. appended at least FsyncInterval before; it
	// stops at the first younger one (in flight, most likely, and acknowledged a moment
	// later: writing it would be disk and CPU for nothing), which the next commit sees again.
	flushDue
	// flushAll writes every pending frame (Sync, Close, rolls, and the bound of pendOverLocked).
	flushAll
)

// flushPendLocked writes a prefix of the pending frames no commit wrote yet (as mode says)
// into seg: a delivered frame for each one acknowledged, the data frame for the others. The
// payloads written are read without mu: Ack of one of them waits until the writes are done
// (busyFrom..busyTo), since after its Ack the caller may reuse the memory. On a failed write
// the frames before it stay written and the rest are tried again by the next commit.
// syncMu and wmu held.
//
// flushAcked writes only stubs: in the page cache they survive a kill -9, so what the
// destination accepted is not read and sent again after a process crash, as in WriteAlways.
// No payload is read then. wmu held (syncMu too unless flushAcked: a commit's fsync may be
// running, and claims only the bytes written before it started).
func (s *Spool) flushPendLocked(seg *segment, mode flushMode) error {
	s.mu.Lock()
	todo := s.pend[s.pendWritten:]
	i := 0
	switch mode {
	case flushAcked:
		for i < len(todo) && todo[i].acked {
			i++
		}
	case flushDue:
		// FsyncInterval < 0 (no timed commits) makes every frame due.
		cutoff := s.now().Add(-s.opts.FsyncInterval)
		for i < len(todo) && (todo[i].acked || !todo[i].at.After(cutoff)) {
			i++
		}
	default:
		i = len(todo)
	}
	todo = todo[:i]
	if len(todo) == 0 {
		s.mu.Unlock()
		return nil
	}
	batch := append(s.flushBuf[:0], todo...)
	if mode != flushAcked {
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
			// Kept by reference in the tail, not copied (a commit may write tens of MiB at
			// once, which would double them in memory): until it is durable, an Ack tells the
			// caller not to recycle the payload (AckFrame).
			s.compressNext = s.opts.Compression != CompressNone &&
				(s.opts.CompressBacklog < 0 || int64(unacked)*int64(len(e.p)) > s.opts.CompressBacklog)
			e.pinned, err = s.writeFrameLocked(seg, frameData, e.seq, e.p, true)
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
		p.seg, p.off, p.size, p.pinned = batch[i].seg, batch[i].off, batch[i].size, batch[i].pinned
		if p.taken {
			s.notePosLocked(p.seg, p.off+p.size, p.seq) // handed out before it was written
		}
		if batch[i].acked {
			s.delivered++
			s.deliveredBytes += batch[i].n
		}
	}
	s.pendWritten += n
	for i := range n {
		if !batch[i].acked {
			s.pendDisk -= frameSize(int(batch[i].n)) // counted in s.bytes now
			if !s.pend[s.pendWritten-n+i].taken {
				s.pendHeld -= batch[i].n // in the tail now, then the cache or the disk
			}
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
		if e.acked {
			s.pendAcked -= e.n
			if e.p != nil && s.opts.Buffers != nil {
				s.opts.Buffers.Put(e.p) // AckFrame left it to the spool: the tail is done with it
			}
		}
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
