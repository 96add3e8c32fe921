package aggregator

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime/trace"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/cpuid/v2"
	md5simd "github.com/minio/md5-simd"
)

// md5Servers are the two hashing paths: crypto/md5 forced, and the multi-lane server (which
// is crypto/md5 too where the CPU has no lanes: the test then says so).
func md5Servers(t testing.TB) map[string]*MD5Server {
	lanes := NewMD5Server()
	t.Cleanup(lanes.Close)
	if lanes.Lanes() == 1 {
		t.Logf("this CPU has no MD5 lanes: both paths are crypto/md5")
	}
	return map[string]*MD5Server{"scalar": scalarMD5(), fmt.Sprintf("lanes=%d", lanes.Lanes()): lanes}
}

// md5Sizes are the lengths where MD5's padding changes shape (55 is the longest message
// whose length fits the last block, 56 the shortest that needs one more), md5-simd's 32 KiB
// block boundary, and aggregate sizes.
var md5Sizes = []int{0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 32<<10 - 1, 32 << 10, 32<<10 + 1, 32<<10 + 55, 1<<20 - 1, 1 << 20, 1<<20 + 64, 2 << 20}

// sumLikePacker hashes buf[magicLen:] and appends the sum to buf, as hashLoop does.
func sumLikePacker(s summer, body []byte) []byte {
	buf := make([]byte, 0, magicLen+len(body)+checksumLen)
	buf = append(append(buf, magic[:]...), body...)
	return s.Sum(buf, buf[magicLen:])[magicLen+len(body):]
}

func TestMD5PathsMatchCryptoMD5(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 2<<20+7)
	rand.NewChaCha8([32]byte{1}).Read(data)
	sizes := append([]int{}, md5Sizes...)
	for range 40 {
		sizes = append(sizes, rng.IntN(2<<20+1))
	}
	for name, srv := range md5Servers(t) {
		t.Run(name, func(t *testing.T) {
			s := srv.newSummer()
			defer s.Close()
			for _, n := range sizes {
				// Offsets move the message against memory alignment too.
				p := data[n%7 : n%7+n]
				want := md5.Sum(p)
				if got := sumLikePacker(s, p); !bytes.Equal(got, want[:]) {
					t.Fatalf("size %d: MD5 %x, crypto/md5 says %x", n, got, want)
				}
			}
		})
	}
}

// TestMD5LanesConcurrent hashes from many goroutines at once, as the hash workers do: the
// lanes fill, and each summer must still get its own message's digest.
func TestMD5LanesConcurrent(t *testing.T) {
	for name, srv := range md5Servers(t) {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, 20)
			for g := range 20 {
				wg.Go(func() {
					rng := rand.NewChaCha8([32]byte{byte(g)})
					s := srv.newSummer()
					defer s.Close()
					for i := range 6 {
						n := md5Sizes[(g+i)%len(md5Sizes)]
						if i%3 == 0 {
							n = int(rng.Uint64() % (1 << 20))
						}
						p := make([]byte, n)
						rng.Read(p)
						want := md5.Sum(p)
						if got := sumLikePacker(s, p); !bytes.Equal(got, want[:]) {
							errs <- fmt.Errorf("goroutine %d, size %d: MD5 %x, crypto/md5 says %x", g, n, got, want)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestMD5WithoutAVX2 is an amd64 CPU without AVX2 (old x86, or a hypervisor hiding it): the
// aggregator must not batch, and md5-simd must fall back to crypto/md5 by itself.
func TestMD5WithoutAVX2(t *testing.T) {
	had := []cpuid.FeatureID{}
	for _, f := range []cpuid.FeatureID{cpuid.AVX2, cpuid.AVX512F, cpuid.AVX512DQ} {
		if cpuid.CPU.Supports(f) {
			had = append(had, f)
		}
	}
	cpuid.CPU.Disable(had...)
	defer cpuid.CPU.Enable(had...)

	srv := NewMD5Server()
	defer srv.Close()
	if srv.Lanes() != 1 {
		t.Fatalf("%d lanes without AVX2", srv.Lanes())
	}
	simd := md5simd.NewServer()
	defer simd.Close()
	h := simd.NewHash()
	defer h.Close()
	for _, n := range md5Sizes {
		p := bytes.Repeat([]byte{byte(n)}, n)
		h.Reset()
		h.Write(p)
		want := md5.Sum(p)
		if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Fatalf("md5-simd without AVX2, size %d: %x, want %x", n, got, want)
		}
	}
	a, err := New(Options{Aggregate: true, PartitionKey: "k", MaxAge: time.Hour}, &collector{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.hash.batch != 1 {
		t.Fatalf("batches of %d aggregates without lanes: full aggregates would wait for nothing", a.hash.batch)
	}
}

// FuzzMD5Lanes compares the multi-lane path with crypto/md5 on any message, each input also
// hashed twice more concurrently so that several lanes are in use.
func FuzzMD5Lanes(f *testing.F) {
	for _, n := range []int{0, 55, 56, 63, 64, 65, 32<<10 + 1} {
		f.Add(bytes.Repeat([]byte{0xa5}, n))
	}
	srv := NewMD5Server()
	defer srv.Close()
	f.Fuzz(func(t *testing.T, p []byte) {
		want := md5.Sum(p)
		var wg sync.WaitGroup
		got := make([][]byte, 3)
		for i := range got {
			wg.Go(func() {
				s := srv.newSummer()
				defer s.Close()
				got[i] = sumLikePacker(s, p)
			})
		}
		wg.Wait()
		for _, g := range got {
			if !bytes.Equal(g, want[:]) {
				t.Fatalf("size %d: multi-lane MD5 %x, crypto/md5 says %x", len(p), g, want)
			}
		}
	})
}

// TestMD5LanesUnderTracer: md5-simd v1.1.2's scalar assembly does not keep the frame pointer,
// and the execution tracer, which unwinds stacks by frame pointers, faults on it (the
// process dies). With GODEBUG=tracefpunwindoff=1, the documented way to trace an agent,
// tracing while hashing is safe. Runs the check in a child process, as a crash would end
// this one.
func TestMD5LanesUnderTracer(t *testing.T) {
	if os.Getenv("KINSHIP_MD5_TRACE_CHILD") == "1" {
		if err := trace.Start(io.Discard); err != nil {
			t.Fatal(err)
		}
		defer trace.Stop()
		srv := NewMD5Server()
		defer srv.Close()
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				s := srv.newSummer()
				defer s.Close()
				p := make([]byte, 100<<10+g)
				for range 200 {
					sumLikePacker(s, p)
				}
			})
		}
		wg.Wait()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMD5LanesUnderTracer$", "-test.count=1")
	cmd.Env = append(os.Environ(), "KINSHIP_MD5_TRACE_CHILD=1", "GODEBUG=tracefpunwindoff=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tracing while hashing with GODEBUG=tracefpunwindoff=1: %v\n%.2000s", err, out)
	}
}

// TestMD5ServerOutlivesAggregators: a process-wide server sees aggregators come and go (a
// reload restarts flows). md5-simd never forgets a closed hasher, so the server must reuse
// the hashers of closed aggregators instead of asking for new ones each time; and what
// they hash stays right.
func TestMD5ServerOutlivesAggregators(t *testing.T) {
	srv := NewMD5Server()
	defer srv.Close()
	if srv.Lanes() == 1 {
		t.Logf("this CPU has no MD5 lanes: crypto/md5 summers, nothing to reuse")
	}
	made := 0
	for round := range 5 {
		c := &collector{}
		a, err := New(Options{Aggregate: true, PartitionKey: "k", MaxRecordBytes: 8 << 10, MaxAge: time.Hour, MD5: srv}, c)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2000 {
			if err := a.Add(0, fmt.Appendf(nil, "round %d line %d", round, i), int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range c.records() {
			users, _, _ := Deaggregate(r.Data, r.PartitionKey)
			if len(users) != r.UserRecords {
				t.Fatalf("round %d: a record of %d lines decodes to %d", round, r.UserRecords, len(users))
			}
			n += len(users)
		}
		if n != 2000 {
			t.Fatalf("round %d: %d lines, want 2000", round, n)
		}
		srv.mu.Lock()
		idle := len(srv.idle)
		srv.mu.Unlock()
		if round == 0 {
			made = idle
		} else if idle != made {
			t.Fatalf("round %d: the server holds %d hashers, %d after the first aggregator: they are not reused", round, idle, made)
		}
	}
}
