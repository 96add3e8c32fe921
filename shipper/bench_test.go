package shipper

import (
	"context"
	"sync/atomic"
	"testing"
)

// benchSource hands out one shared record n times; it costs next to nothing, so the
// benchmark measures the shipper itself.
type benchSource struct {
	rec   Record
	n     uint64
	next  atomic.Uint64
	acked atomic.Uint64
	done  chan struct{}
}

func (s *benchSource) Next(ctx context.Context) (Item, error) {
	if s.next.Load() >= s.n {
		<-ctx.Done()
		return Item{}, ctx.Err()
	}
	seq := s.next.Add(1) - 1
	return Item{Seq: seq, Record: s.rec}, nil
}

func (s *benchSource) Pending() int { return int(s.n - s.next.Load()) }

func (s *benchSource) Ack(uint64) error {
	if s.acked.Add(1) == s.n {
		close(s.done)
	}
	return nil
}

func BenchmarkShipToDiscard(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"1KiB", 1 << 10}, {"1MiB", 1 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			pk := "0123456789abcdef"
			src := &benchSource{rec: Record{PartitionKey: pk, Data: make([]byte, bc.size-len(pk)), UserRecords: 1},
				n: uint64(b.N), done: make(chan struct{})}
			s := New(src, Discard{}, Options{Metrics: Metrics{}.withDefaults()})
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			b.ResetTimer()
			go func() { errc <- s.Run(ctx) }()
			<-src.done
			b.StopTimer()
			cancel()
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
		})
	}
}
