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
// messages at once, for about the CPU cost of one. It wraps one md5-simd server: a
// goroutine that takes 32 KiB blocks from every summer writing to it and processes as many
// lanes as have data (scalar below 3). Where the CPU has neither (arm64, old x86, builds
// with the noasm tag) it is crypto/md5, and Lanes is 1.
//
// One MD5Server can serve several aggregators (the more aggregates hashed at once, the
// fuller the lanes): pass it in Options.MD5 and Close it after them. An aggregator without
// one starts its own and closes it on Close.
//
// Tracing: md5-simd v1.1.2 (its last release) has scalar assembly that does not keep the
// frame pointer, and the execution tracer (runtime/trace, go test -trace), which unwinds
// stacks by frame pointers, then faults and the process dies. Trace an agent with
// GODEBUG=tracefpunwindoff=1 (TestMD5LanesUnderTracer). CPU and heap profiles do not unwind
// by frame pointers; the agent enables no block or mutex profile (which do).
type MD5Server struct {
	lanes  int
	srv    md5simd.Server // nil when lanes == 1
	closed sync.Once
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
	s.closed.Do(func() {
		if s.srv != nil {
			s.srv.Close()
		}
	})
}

func (s *MD5Server) newSummer() summer {
	if s.srv == nil {
		return &scalarSummer{h: md5.New()}
	}
	return &laneSummer{h: s.srv.NewHash()}
}

type scalarSummer struct{ h hash.Hash }

func (s *scalarSummer) Sum(dst, p []byte) []byte {
	s.h.Reset()
	s.h.Write(p)
	return s.h.Sum(dst)
}

func (s *scalarSummer) Close() {}

// laneSummer is one md5-simd hasher: Write copies p into the server's block buffers and
// returns once the server has taken all but the last few blocks; Sum waits for the digest.
type laneSummer struct{ h md5simd.Hasher }

func (s *laneSummer) Sum(dst, p []byte) []byte {
	s.h.Reset()
	s.h.Write(p)
	return s.h.Sum(dst)
}

func (s *laneSummer) Close() { s.h.Close() }
