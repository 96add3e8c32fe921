package aggregator

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"testing"
	"time"
)

type discard struct{}

func (discard) Put(*Record) error { return nil }

// BenchmarkPack200B packs 200-byte lines into 1 MiB aggregates and drops them; one op is one
// line, so MB/s is line throughput and allocs/op must be 0. The md5 case hashes the same
// bytes on one core: the physical limit the format sets (per core).
func BenchmarkPack200B(b *testing.B) {
	line := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz "), 6)[:199]
	line = append(line, '\n')
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			a, err := New(Options{Aggregate: true, Workers: workers, MaxAge: time.Hour}, discard{})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := a.Add(uint32(i&3), line, int64(i)); err != nil {
					b.Fatal(err)
				}
			}
			if err := a.Flush(); err != nil {
				b.Fatal(err)
			}
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
