package flow

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// backlog counts the bytes of the spooled frames the destination has not acknowledged, for
// Status: the spool counts frames, not bytes, and reading its segments for the bytes (as
// `kinship status` does when no agent runs) would cost a read of the whole backlog per poll.
//
// The bytes are the frames' payloads as appended (envelopes, before the spool's compression
// and framing). Consecutive frames are summed into runs of about backlogRunBytes, so memory
// grows with the backlog's bytes, not with its frame count; a partly acknowledged run counts
// in proportion to its frames still waiting. Safe for concurrent use.
//
// The same bytes are kinship_spool_unacked_bytes: gauge follows every change.
type backlog struct {
	gauge prometheus.Gauge

	mu    sync.Mutex
	runs  []backlogRun // ascending sequences; runs[head:] are live
	head  int
	total int64  // bytes of runs[head:]
	acked uint64 // the highest cursor unacked was given
}

type backlogRun struct {
	first, last uint64
	bytes       int64
}

const backlogRunBytes = 64 << 10

// add counts frame seq of n bytes. Frames come in sequence order.
func (b *backlog) add(seq uint64, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total += int64(n)
	if r := b.lastRunLocked(); r != nil && r.last+1 == seq && r.bytes < backlogRunBytes {
		r.last, r.bytes = seq, r.bytes+int64(n)
	} else {
		b.runs = append(b.runs, backlogRun{first: seq, last: seq, bytes: int64(n)})
	}
	b.gauge.Set(float64(b.bytesLocked()))
}

func (b *backlog) lastRunLocked() *backlogRun {
	if len(b.runs) == b.head {
		return nil
	}
	return &b.runs[len(b.runs)-1]
}

// unacked forgets the frames at or below acked (the spool's acknowledged cursor, which also
// passes frames drop_oldest deleted) and returns the bytes of the others.
func (b *backlog) unacked(acked uint64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.head < len(b.runs) && b.runs[b.head].last <= acked {
		b.total -= b.runs[b.head].bytes
		b.head++
	}
	switch {
	case b.head == len(b.runs):
		b.runs, b.head = b.runs[:0], 0
	case b.head > 64 && b.head > len(b.runs)/2:
		n := copy(b.runs, b.runs[b.head:])
		b.runs, b.head = b.runs[:n], 0
	}
	b.acked = max(b.acked, acked) // Status may pass an older cursor than Ack did
	n := b.bytesLocked()
	b.gauge.Set(float64(n))
	return n
}

// bytesLocked is the bytes of the frames after b.acked.
func (b *backlog) bytesLocked() int64 {
	n := b.total
	if b.head < len(b.runs) {
		if r := b.runs[b.head]; r.first <= b.acked {
			n -= r.bytes * int64(b.acked-r.first+1) / int64(r.last-r.first+1)
		}
	}
	return n
}
