package shipper

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/aggregator"
)

// lineSource is a spool of records built from numbered lines (some KPL aggregates, some
// plain), for the destination tests. It is separate from fakeSource on purpose: these
// tests only need "every item acked, once".
type lineSource struct {
	mu    sync.Mutex
	items []Item
	next  int
	acks  map[uint64]int
	done  chan struct{}
}

// newLineSource packs n lines "<prefix>-<i> ..." into records: runs of perAgg lines become
// one aggregate, and every fifth record is a single plain line.
func newLineSource(prefix string, n, perAgg int) (*lineSource, []string) {
	s := &lineSource{acks: map[uint64]int{}, done: make(chan struct{})}
	var lines []string
	for i := 0; i < n; {
		seq := uint64(len(s.items))
		if seq%5 == 4 {
			l := fmt.Sprintf("%s-%06d plain \"quoted\" \\ line", prefix, i)
			lines = append(lines, l)
			s.items = append(s.items, Item{Seq: seq, Record: Record{PartitionKey: "pk", Data: []byte(l), UserRecords: 1}})
			i++
			continue
		}
		var datas [][]byte
		for j := 0; j < perAgg && i < n; j, i = j+1, i+1 {
			l := fmt.Sprintf("%s-%06d aggregated line with some padding", prefix, i)
			lines = append(lines, l)
			datas = append(datas, []byte(l))
		}
		s.items = append(s.items, Item{Seq: seq, Record: Record{PartitionKey: "pk", Data: aggregator.EncodeAggregate("pk", "", datas), UserRecords: len(datas)}})
	}
	return s, lines
}

func (s *lineSource) Next(ctx context.Context) (Item, error) {
	s.mu.Lock()
	if s.next < len(s.items) {
		it := s.items[s.next]
		s.next++
		s.mu.Unlock()
		return it, nil
	}
	s.mu.Unlock()
	<-ctx.Done()
	return Item{}, ctx.Err()
}

func (s *lineSource) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items) - s.next
}

func (s *lineSource) Ack(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acks[seq]++
	if len(s.acks) == len(s.items) {
		select {
		case <-s.done:
		default:
			close(s.done)
		}
	}
	return nil
}

// shipAll runs a shipper from src to dst until every item is acked (or a generous
// deadline passes), and checks that each was acked exactly once.
func shipAll(t *testing.T, src *lineSource, dst Destination) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := New(src, dst, Options{BackoffBase: time.Millisecond, BackoffMax: 20 * time.Millisecond})
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	select {
	case <-src.done:
	case <-time.After(60 * time.Second):
		t.Error("not every record was acked within 60s")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("shipper: %v", err)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	for seq, n := range src.acks {
		if n != 1 {
			t.Errorf("record %d acked %d times", seq, n)
		}
	}
}

// assertLinesOnce checks that got holds every line of want exactly once, and nothing else.
func assertLinesOnce(t *testing.T, got map[string]int, want []string) {
	t.Helper()
	for _, l := range want {
		if got[l] != 1 {
			t.Errorf("line %q arrived %d times, want 1", l, got[l])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d distinct lines arrived, want %d", len(got), len(want))
	}
}

func encodeForTest(datas [][]byte) []byte { return aggregator.EncodeAggregate("pk", "", datas) }
