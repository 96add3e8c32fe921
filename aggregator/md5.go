package aggregator

import (
	"crypto/md5"
	"hash"
	"sync"

	md5simd "github.com/minio/md5-simd"
)

// summer computes the MD5 of one aggregate's body. Each hash worker owns one; it is not safe
// for concurrent use.
type summer interface {
	// Sum appends MD5(p) to dst. p may alias dst's spare capacity only if it ends before
	// len(dst) (the packer hashes buf[magicLen:] and appends to buf).
	Sum(dst, p []byte) []byte
	Close()
}

// MD5Server hashes several aggregates side by side: MD5 is a serial chain within one
// message, but AVX2 (8 lanes) and AVX-512 (16 lanes) run that chain for independent
// messages at once, for a fraction of the CPU of as many serial chains. It wraps one
// md5-simd server: a goroutine that takes 32 KiB blocks from every summer writing to it
// (copied into its 48 buffers of 32 KiB, 1.5 MiB, its whole memory) and processes as many
// lanes as have data (scalar below 3). Where the CPU has neither (arm64, old x86, builds with
// the noasm tag) it is crypto/md5, and Lanes is 1.
//
// One MD5Server serves the whole process (the supervisor starts it and passes it to every
// flow's aggregator in Options.MD5): lanes fill with the aggregates of all flows, its
// buffers are shared, and a flow restarted by a reload reuses the summers of the old one. An
// aggregator without one starts its own and closes it on Close.
//
// Summers are kept for reuse rather than closed: md5-simd v1.1.2 never forgets a closed
// hasher (its server deletes the wrong map key), so a long-lived server that closed the
// summers of every restarted aggregator would grow, and scan them all at every block.
//
// Tracing: md5-simd v1.1.2 (its last release) has scalar assembly that does not keep the
// frame pointer, and the execution tracer (runtime/trace, go test -trace), which unwinds
// stacks by frame pointers, then faults and the process dies. Trace an agent with
// GODEBUG=tracefpunwindoff=1 (TestMD5LanesUnderTracer). CPU and heap profiles do not unwind
// by frame pointers; the agent enables no block or mutex profile (which do).
type MD5Server struct {
	lanes int
	srv   md5simd.Server // nil when lanes == 1

	mu     sync.Mutex
	idle   []md5simd.Hasher // of summers closed, for the next newSummer
	closed bool
}

// NewMD5Server starts a multi-lane MD5 server where the CPU has the instructions for it.
func NewMD5Server() *MD5Server {
	if n := cpuMD5Lanes(); n > 1 {
		return &MD5Server{lanes: n, srv: md5simd.NewServer()}
	}
	return scalarMD5()
}

// scalarMD5 hashes with crypto/md5 whatever the CPU (tests compare the two paths).
func scalarMD5() *MD5Server { return &MD5Server{lanes: 1} }

// Lanes is how many aggregates the server hashes at once for the CPU cost of one: 16 with
// AVX-512, 8 with AVX2, 1 otherwise.
func (s *MD5Server) Lanes() int { return s.lanes }

// Close stops the server's goroutine; summers made from it must be closed first.
func (s *MD5Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for _, h := range s.idle {
		h.Close()
	}
	s.idle = nil
	if s.srv != nil {
		s.srv.Close()
	}
}

func (s *MD5Server) newSummer() summer {
	if s.srv == nil {
		return newScalarSummer()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.idle); n > 0 {
		h := s.idle[n-1]
		s.idle = s.idle[:n-1]
		return &laneSummer{srv: s, h: h}
	}
	return &laneSummer{srv: s, h: s.srv.NewHash()}
}

// putHasher keeps h for the next summer.
func (s *MD5Server) putHasher(h md5simd.Hasher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		h.Close()
		return
	}
	s.idle = append(s.idle, h)
}

type scalarSummer struct{ h hash.Hash }

func newScalarSummer() *scalarSummer { return &scalarSummer{h: md5.New()} }

func (s *scalarSummer) Sum(dst, p []byte) []byte {
	s.h.Reset()
	s.h.Write(p)
	return s.h.Sum(dst)
}

func (s *scalarSummer) Close() {}

// laneSummer is one md5-simd hasher: Write copies p into the server's block buffers and
// returns once the server has taken all but the last few blocks; Sum waits for the digest.
type laneSummer struct {
	srv *MD5Server
	h   md5simd.Hasher
}

func (s *laneSummer) Sum(dst, p []byte) []byte {
	s.h.Reset()
	s.h.Write(p)
	return s.h.Sum(dst)
}

// Close gives the hasher back to the server for the next summer.
func (s *laneSummer) Close() {
	if s.h != nil {
		s.srv.putHasher(s.h)
		s.h = nil
	}
}
