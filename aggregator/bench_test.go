package aggregator

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"sync"
	"testing"
	"time"
)

type discard struct{}

func (discard) Put(*Record) error { return nil }

// reportCPU adds the process's CPU seconds per GB processed since cpu0 (other goroutines and
// the GC included): with several cores, wall-clock MB/s hides what hashing costs the host.
func reportCPU(b *testing.B, cpu0 float64, bytes int64) {
	if bytes > 0 {
		b.ReportMetric((processCPU()-cpu0)/(float64(bytes)/(1<<30)), "cpu-s/GB")
	}
}

// BenchmarkPack200B packs 200-byte lines into 1 MiB aggregates and drops them; one op is one
// line, so MB/s is line throughput and allocs/op must be 0. md5=scalar forces crypto/md5;
// md5=lanes is the multi-lane server (crypto/md5 where the CPU has no lanes). The md5 case
// hashes the same bytes on one core with crypto/md5: what the format cost per core before.
func BenchmarkPack200B(b *testing.B) {
	line := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz "), 6)[:199]
	line = append(line, '\n')
	cases := []struct {
		md5     string
		workers int
	}{{"scalar", 1}, {"scalar", 2}, {"lanes", 8}, {"lanes", 16}}
	for _, tc := range cases {
		b.Run(fmt.Sprintf("md5=%s/workers=%d", tc.md5, tc.workers), func(b *testing.B) {
			srv := scalarMD5()
			if tc.md5 == "lanes" {
				srv = NewMD5Server()
				defer srv.Close()
			}
			a, err := New(Options{Aggregate: true, Workers: tc.workers, MaxAge: time.Hour, MD5: srv}, discard{})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for i := range b.N {
				if err := a.Add(uint32(i&3), line, int64(i)); err != nil {
					b.Fatal(err)
				}
			}
			if err := a.Flush(); err != nil {
				b.Fatal(err)
			}
			reportCPU(b, cpu0, int64(b.N)*int64(len(line)))
			b.StopTimer()
			if err := a.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
	b.Run("md5", func(b *testing.B) {
		// Hash 1 MiB blocks made of the same lines, as the workers do.
		block := bytes.Repeat(line, (1<<20)/len(line))
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		h := md5.New()
		done := 0
		for range b.N {
			done += len(line)
			if done >= len(block) {
				h.Reset()
				h.Write(block)
				_ = h.Sum(nil)
				done = 0
			}
		}
	})
}

// BenchmarkMD5 hashes n 1 MiB aggregates at once, each by its own goroutine and summer, as
// n hash workers do: crypto/md5 against the multi-lane server. One op is the n aggregates;
// cpu-s/GB is what counts on a shared host (crypto/md5 with n > 1 uses n cores).
func BenchmarkMD5(b *testing.B) {
	const size = 1 << 20
	for _, path := range []string{"crypto", "lanes"} {
		for _, n := range []int{1, 2, 4, 8, 16} {
			b.Run(fmt.Sprintf("%s/n=%d", path, n), func(b *testing.B) {
				srv := scalarMD5()
				if path == "lanes" {
					srv = NewMD5Server()
					defer srv.Close()
				}
				bufs := make([][]byte, n)
				summers := make([]summer, n)
				for i := range bufs {
					bufs[i] = make([]byte, magicLen+size, magicLen+size+checksumLen)
					for j := range bufs[i] {
						bufs[i][j] = byte(i + j*7)
					}
					summers[i] = srv.newSummer()
					defer summers[i].Close()
				}
				start := make([]chan struct{}, n)
				var done sync.WaitGroup
				for i := range n {
					start[i] = make(chan struct{})
					go func() {
						for range start[i] {
							bufs[i] = summers[i].Sum(bufs[i][:magicLen+size], bufs[i][magicLen:magicLen+size])
							done.Done()
						}
					}()
				}
				b.SetBytes(int64(n) * size)
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := processCPU()
				for range b.N {
					done.Add(n)
					for i := range n {
						start[i] <- struct{}{}
					}
					done.Wait()
				}
				reportCPU(b, cpu0, int64(b.N)*int64(n)*size)
				b.StopTimer()
				for i := range n {
					close(start[i])
				}
			})
		}
	}
}

// BenchmarkPlain200B is aggregate: false: every line is its own record and goes through
// the delivery pipeline alone (no MD5), so this is the per-record pipeline cost.
func BenchmarkPlain200B(b *testing.B) {
	line := bytes.Repeat([]byte("x"), 200)
	a, err := New(Options{Aggregate: false, PartitionKey: "k", Workers: 1}, discard{})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for i := range b.N {
		if err := a.Add(0, line, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
}
