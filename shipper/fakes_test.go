package shipper

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeSource is a slice-backed spool that records acks.
type fakeSource struct {
	mu     sync.Mutex
	items  []Item
	next   int
	wake   chan struct{} // closed and replaced by push
	acks   map[uint64]int
	ackErr error
	done   chan struct{} // closed once every pushed item was acked
	total  int
}

func newFakeSource(items []Item) *fakeSource {
	s := &fakeSource{wake: make(chan struct{}), acks: map[uint64]int{}, done: make(chan struct{})}
	s.push(items...)
	return s
}

func (s *fakeSource) push(items ...Item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = append(s.items, items...)
	s.total += len(items)
	close(s.wake)
	s.wake = make(chan struct{})
}

func (s *fakeSource) Next(ctx context.Context) (Item, error) {
	for {
		s.mu.Lock()
		if s.next < len(s.items) {
			it := s.items[s.next]
			s.next++
			s.mu.Unlock()
			return it, nil
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return Item{}, ctx.Err()
		case <-wake:
		}
	}
}

func (s *fakeSource) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items) - s.next
}

func (s *fakeSource) Ack(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ackErr != nil {
		return s.ackErr
	}
	s.acks[seq]++
	if len(s.acks) == s.total && s.total > 0 {
		select {
		case <-s.done:
		default:
			close(s.done)
		}
	}
	return nil
}

// ackCounts returns a copy of the ack counts.
func (s *fakeSource) ackCounts() map[uint64]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[uint64]int, len(s.acks))
	for k, v := range s.acks {
		m[k] = v
	}
	return m
}

// fakeDest records every request and answers with put.
type fakeDest struct {
	limits Limits
	put    func(ctx context.Context, call int, recs []Record) ([]error, error)

	mu    sync.Mutex
	calls [][]string // Data of each request, in call order
}

func (d *fakeDest) Limits() Limits { return d.limits }

func (d *fakeDest) Put(ctx context.Context, recs []Record) ([]error, error) {
	got := make([]string, len(recs))
	for i := range recs {
		got[i] = string(recs[i].Data)
	}
	d.mu.Lock()
	call := len(d.calls)
	d.calls = append(d.calls, got)
	d.mu.Unlock()
	if d.put == nil {
		return nil, nil
	}
	return d.put(ctx, call, recs)
}

func (d *fakeDest) requests() [][]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([][]string(nil), d.calls...)
}

// items returns n items whose Data is their sequence number, zero-padded to size bytes.
func items(n, size int) []Item {
	out := make([]Item, n)
	for i := range out {
		d := []byte(fmt.Sprintf("%0*d", size, i))
		out[i] = Item{Seq: uint64(i), Record: Record{PartitionKey: "pk", Data: d, UserRecords: 2}}
	}
	return out
}

// seqOf turns a request's Data back into sequence numbers.
func seqOf(t *testing.T, data []string) []int {
	t.Helper()
	out := make([]int, len(data))
	for i, d := range data {
		n, err := strconv.Atoi(d)
		if err != nil {
			t.Fatalf("record data %q is not a sequence number", d)
		}
		out[i] = n
	}
	return out
}

// runShipper runs s in the background; the returned stop cancels it and returns Run's error,
// failing the test if Run does not return promptly.
func runShipper(t *testing.T, s *Shipper) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(5 * time.Second):
				t.Fatalf("Run did not return within 5s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func waitAcked(t *testing.T, src *fakeSource, within time.Duration) {
	t.Helper()
	select {
	case <-src.done:
	case <-time.After(within):
		t.Fatalf("not every item was acked within %v: %d of %d", within, len(src.ackCounts()), src.total)
	}
}

func assertAckedOnce(t *testing.T, src *fakeSource, n int) {
	t.Helper()
	acks := src.ackCounts()
	if len(acks) != n {
		t.Errorf("%d items acked, want %d", len(acks), n)
	}
	for seq, c := range acks {
		if c != 1 {
			t.Errorf("item %d acked %d times", seq, c)
		}
	}
}

// logBuffer is a concurrency-safe log sink for asserting log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }
