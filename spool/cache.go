package spool

// cachedFrame is a frame's payload kept in memory after it was written, with where it is on
// disk so that Next can step over it without reading it.
type cachedFrame struct {
	seq  uint64
	seg  *segment
	off  int64
	size int64 // of the frame on disk, which a compressed payload makes smaller than p
	p    []byte
	// pinned: the tail refers to p (see writeFrameLocked), so p is not handed back to
	// Buffers before it is durable.
	pinned bool
}

// dropCachedLocked forgets the oldest cached frame; its buffer goes back to the caller's
// Buffers unless Next is handing it out (taken). mu held.
func (s *Spool) dropCachedLocked(taken bool) {
	c := s.cache[0]
	s.cacheBytes -= int64(len(c.p))
	s.cache[0] = cachedFrame{}
	s.cache = s.cache[1:]
	// A pinned frame that is not durable yet is still referred to by the tail (what a failed
	// fsync is repaired from): its buffer must not be reused; the GC takes it.
	if !taken && s.opts.Buffers != nil && (!c.pinned || c.seq <= s.durable) {
		s.opts.Buffers.Put(c.p)
	}
}

// takeCachedLocked returns the payload of the data frame the reader is about to read, when it
// is cached: the frame must be the next seq wanted and lie at or after the reader's offset in
// the same segment, so that only ack frames (or frames already returned) are stepped over. mu held.
func (s *Spool) takeCachedLocked(seg *segment, off, limit int64) (cachedFrame, bool) {
	for len(s.cache) > 0 && s.cache[0].seq < s.rnext {
		s.dropCachedLocked(false)
	}
	if len(s.cache) == 0 {
		return cachedFrame{}, false
	}
	c := s.cache[0]
	if c.seq != s.rnext || c.seg != seg || c.off < off || c.off+c.size > limit {
		return cachedFrame{}, false
	}
	s.dropCachedLocked(true)
	return c, true
}
