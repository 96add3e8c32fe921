package spool

// unsyncedTail holds what a failed fsync of the active segment may lose: its bytes
// [durEnd, end), in file order, as pieces that repairLocked writes into a new segment.
//
// It is also the append path's write buffer, so keeping it costs no extra copy where it can
// be helped: a frame is assembled (or compressed) straight into an arena chunk and written
// from there; a large raw payload the caller handed over (AppendShared) is not copied at all,
// the piece points at the caller's slice (the spool never lets it be recycled while it is
// not durable: see dropCachedLocked and AckFrame). Arena chunks are reused once every piece
// in them is trimmed, so a steady stream of frames neither allocates nor moves bytes around;
// a bigger one-off chunk is left to the garbage collector.
//
// Owned by the writer: wmu held for every call.
type unsyncedTail struct {
	pieces []tailPiece // pieces[head:] are live
	head   int
	n      int64        // bytes in live pieces
	cur    *tailChunk   // the chunk being filled
	spare  []*tailChunk // free chunks of tailChunkBytes, kept for the next fills
}

// The arena's chunks. It starts with a tailSmallBytes chunk: in backlog mode while the
// destination keeps up only stubs (~100 bytes each) and headers pass through it, a few KiB
// per commit, and a chunk emptied by the commit's fsync is refilled from its start. It grows
// to tailChunkBytes chunks only when frames are copied: a small chunk filled up, or a frame
// that does not fit one (a data frame of a few KiB up to scratchBytes; bigger payloads of
// AppendShared are referred to, not copied, and compressed ones are encoded into it).
// tailChunkBytes holds a few such frames, or one compressed aggregate of ~1 MiB with room to
// spare. maxSpareChunks emptied chunks are kept for the next fills: one saves an allocation
// per chunk turnover while frames are copied steadily; more would be memory kept after a
// backlog is gone.
const (
	tailSmallBytes = 64 << 10
	tailChunkBytes = 4 << 20
	maxSpareChunks = 1
)

type tailChunk struct {
	b         []byte // b[:len(b)] is handed out
	live      int    // live pieces in it
	liveBytes int    // their bytes
}

type tailPiece struct {
	b   []byte
	c   *tailChunk // nil: memory the spool does not own (a shared payload, the zero pad)
	off int        // start of b in c.b
}

func (t *unsyncedTail) len() int64 { return t.n }

// alloc returns n bytes of arena memory as a new live piece; the caller fills them.
func (t *unsyncedTail) alloc(n int) []byte {
	if t.cur == nil || cap(t.cur.b)-len(t.cur.b) < n {
		// Small chunks while only stubs and headers come (one that filled up with few
		// live bytes held stubs written during a commit's fsync); a frame too big for a
		// small chunk, or one filled up with live bytes, means frames are being copied.
		grow := n > tailSmallBytes/4 || (t.cur != nil && t.cur.liveBytes > tailSmallBytes/2)
		t.retire(t.cur)
		switch {
		case !grow:
			t.cur = &tailChunk{b: make([]byte, 0, tailSmallBytes)}
		case n <= tailChunkBytes && len(t.spare) > 0:
			t.cur = t.spare[len(t.spare)-1]
			t.spare[len(t.spare)-1] = nil
			t.spare = t.spare[:len(t.spare)-1]
		default:
			t.cur = &tailChunk{b: make([]byte, 0, max(n, tailChunkBytes))}
		}
	}
	c := t.cur
	off := len(c.b)
	c.b = c.b[:off+n]
	c.live++
	c.liveBytes += n
	b := c.b[off : off+n : off+n]
	t.pieces = append(t.pieces, tailPiece{b: b, c: c, off: off})
	t.n += int64(n)
	return b
}

// shrinkLast cuts the last piece (just made by alloc) to n bytes, giving the rest back.
func (t *unsyncedTail) shrinkLast(n int) {
	p := &t.pieces[len(t.pieces)-1]
	t.n -= int64(len(p.b) - n)
	if p.c != nil {
		p.c.liveBytes -= len(p.b) - n
	}
	p.b = p.b[:n]
	if p.c == t.cur && p.off+cap(p.b) == len(p.c.b) {
		p.c.b = p.c.b[:p.off+n]
	}
}

// ref adds b as a live piece without copying it: b must not change while it is live.
func (t *unsyncedTail) ref(b []byte) {
	if len(b) == 0 {
		return
	}
	t.pieces = append(t.pieces, tailPiece{b: b})
	t.n += int64(len(b))
}

// mark and unwind take back the pieces of a frame whose write failed.
func (t *unsyncedTail) mark() int { return len(t.pieces) }

func (t *unsyncedTail) unwind(mark int) {
	for len(t.pieces) > max(mark, t.head) {
		p := t.pieces[len(t.pieces)-1]
		t.pieces[len(t.pieces)-1] = tailPiece{}
		t.pieces = t.pieces[:len(t.pieces)-1]
		t.n -= int64(len(p.b))
		if p.c != nil {
			if p.c == t.cur && p.off+len(p.b) == len(p.c.b) {
				p.c.b = p.c.b[:p.off]
			}
			t.release(p.c, len(p.b))
		}
	}
}

// trim drops the first n bytes (a commit made them durable); n ends on a frame boundary,
// but any n works.
func (t *unsyncedTail) trim(n int64) {
	for n > 0 && t.head < len(t.pieces) {
		p := &t.pieces[t.head]
		if int64(len(p.b)) > n {
			p.b = p.b[n:]
			p.off += int(n)
			t.n -= n
			if p.c != nil {
				p.c.liveBytes -= int(n)
			}
			return
		}
		n -= int64(len(p.b))
		t.n -= int64(len(p.b))
		c, size := p.c, len(p.b)
		*p = tailPiece{}
		t.head++
		if c != nil {
			t.release(c, size)
		}
	}
	if t.head == len(t.pieces) {
		t.pieces, t.head = t.pieces[:0], 0
	} else if t.head > 64 && t.head > len(t.pieces)/2 {
		k := copy(t.pieces, t.pieces[t.head:])
		clear(t.pieces[k:])
		t.pieces, t.head = t.pieces[:k], 0
	}
}

// reset drops everything (the bytes are durable, or were rewritten elsewhere).
func (t *unsyncedTail) reset() { t.trim(t.n) }

// each calls fn with the live pieces in order, stopping at its first error.
func (t *unsyncedTail) each(fn func([]byte) error) error {
	for _, p := range t.pieces[t.head:] {
		if err := fn(p.b); err != nil {
			return err
		}
	}
	return nil
}

// release drops one live piece of c, of size bytes; an emptied chunk is reused.
func (t *unsyncedTail) release(c *tailChunk, size int) {
	c.live--
	c.liveBytes -= size
	if c.live > 0 {
		return
	}
	if c == t.cur {
		c.b = c.b[:0] // refill it from the start
		return
	}
	t.retire(c)
}

// retire keeps an emptied standard chunk as a spare; a chunk still in use is left to its
// pieces (it is retired again when the last one goes).
func (t *unsyncedTail) retire(c *tailChunk) {
	if c == nil || c.live > 0 || cap(c.b) != tailChunkBytes || len(t.spare) >= maxSpareChunks {
		return
	}
	c.b = c.b[:0]
	t.spare = append(t.spare, c)
}
