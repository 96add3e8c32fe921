package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

const (
	budgetFrame   = 1000
	budgetSegment = 8 << 10
	budgetFlowMax = 64 << 10
	budgetGlobal  = 64 << 10 // smaller than the two flows' bounds together
)

// budgetSpool opens a spool sharing b, with its own bound larger than its fair part of b.
func budgetSpool(t *testing.T, b *Budget, dropOldest bool) *Spool {
	t.Helper()
	opts := testOptions(t.TempDir())
	opts.FsyncInterval = 2 * time.Millisecond
	opts.SegmentBytes = budgetSegment
	opts.MaxBytes = budgetFlowMax
	opts.DropOldest = dropOldest
	opts.Budget = b
	opts.Metrics = Metrics{}.withDefaults()
	return mustOpen(t, opts)
}

// appendAll appends frames 1..n to s, and after each one checks the budget's bound: the
// spools together hold at most the bound plus one segment per spool.
func appendAll(ctx context.Context, s *Spool, b *Budget, n int, spools int) error {
	for i := 1; i <= n; i++ {
		seq, err := s.Append(ctx, payloadFor(uint64(i), budgetFrame))
		if err != nil {
			return err
		}
		if seq != uint64(i) {
			return fmt.Errorf("append %d: got seq %d", i, seq)
		}
		if used, limit := b.Used(), b.Max()+int64(spools)*budgetSegment; used > limit {
			return fmt.Errorf("after append %d: spools hold %d bytes together, bound %d + one segment each = %d", i, used, b.Max(), limit)
		}
	}
	return nil
}

// drain reads and acks s until it has seen frame last (or ctx ends), checking payloads, and
// returns the seqs received.
func drain(ctx context.Context, s *Spool, last uint64) ([]uint64, error) {
	var got []uint64
	for {
		f, err := s.Next(ctx)
		if err != nil {
			return got, err
		}
		if !bytes.Equal(f.Payload, payloadFor(f.Seq, budgetFrame)) {
			return got, fmt.Errorf("frame %d: payload differs", f.Seq)
		}
		got = append(got, f.Seq)
		if err := s.Ack(f.Seq); err != nil {
			return got, err
		}
		s.Checkpoint(f.Seq)
		if f.Seq == last {
			return got, nil
		}
	}
}

func isFull(s *Spool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.full
}

// Two flows, both destinations cut: the global bound stops both appenders well below the sum
// of their own bounds; once the destinations return, every frame arrives, once, in order.
func TestBudgetBlocksThenDeliversAll(t *testing.T) {
	b := NewBudget(budgetGlobal)
	a, c := budgetSpool(t, b, false), budgetSpool(t, b, false)
	const n = 300 // 300 KB each: far more than the budget
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, s := range []*Spool{a, c} {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- appendAll(ctx, s, b, n, 2) }()
	}
	// The cut: nobody reads. Both appenders end up waiting for room.
	waitFor(t, "both appenders blocked", func() bool { return isFull(a) && isFull(c) })
	if used := b.Used(); used > budgetGlobal+2*budgetSegment {
		t.Fatalf("spools hold %d bytes, bound %d", used, budgetGlobal)
	}
	if st := a.Stats(); st.Bytes >= budgetFlowMax {
		t.Fatalf("flow a holds %d bytes: blocked by its own bound, not the global one", st.Bytes)
	}
	// The cut ends.
	for _, s := range []*Spool{a, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := drain(ctx, s, n)
			if err == nil && len(got) != n {
				err = fmt.Errorf("received %d frames, want %d", len(got), n)
			}
			for i, seq := range got {
				if err == nil && seq != uint64(i+1) {
					err = fmt.Errorf("frame %d has seq %d", i+1, seq)
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A flow whose destination is down fills the shared part of the budget and waits; a healthy
// flow beside it keeps shipping within its reserve: never starved by the other's outage.
func TestBudgetHealthyFlowNotStarved(t *testing.T) {
	b := NewBudget(budgetGlobal)
	stuck, healthy := budgetSpool(t, b, false), budgetSpool(t, b, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stuckDone := make(chan error, 1)
	stuckCtx, stopStuck := context.WithCancel(ctx)
	go func() { stuckDone <- appendAll(stuckCtx, stuck, b, 1000, 2) }()
	waitFor(t, "the stuck flow blocked", func() bool { return isFull(stuck) })

	const n = 300
	got := make(chan []uint64, 1)
	drainErr := make(chan error, 1)
	go func() {
		seqs, err := drain(ctx, healthy, n)
		got <- seqs
		drainErr <- err
	}()
	if err := appendAll(ctx, healthy, b, n, 2); err != nil {
		t.Fatalf("healthy flow: %v", err)
	}
	if err := <-drainErr; err != nil {
		t.Fatalf("healthy flow: %v", err)
	}
	if seqs := <-got; len(seqs) != n {
		t.Fatalf("healthy flow delivered %d frames, want %d", len(seqs), n)
	}
	if !isFull(stuck) {
		t.Fatal("the stuck flow stopped waiting although nothing of it was acknowledged")
	}
	stopStuck()
	if err := <-stuckDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("stuck appender: %v, want context.Canceled", err)
	}
}

// drop_oldest under the global bound: appends never wait, every frame is either delivered
// or counted as dropped, and the spools stay within the bound.
func TestBudgetDropOldestCountsDrops(t *testing.T) {
	b := NewBudget(budgetGlobal)
	a, c := budgetSpool(t, b, true), budgetSpool(t, b, true)
	const n = 300
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range []*Spool{a, c} {
		// The cut: nothing is read while everything is appended; no Append waits.
		if err := appendAll(ctx, s, b, n, 2); err != nil {
			t.Fatal(err)
		}
	}
	for name, s := range map[string]*Spool{"a": a, "c": c} {
		got, err := drain(ctx, s, n)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		dropped := metricValue(t, s.m.SpoolDropped)
		if dropped == 0 {
			t.Fatalf("%s: nothing counted as dropped although %d KB went through a %d KB budget", name, n, budgetGlobal>>10)
		}
		if int(dropped)+len(got) != n {
			t.Fatalf("%s: %d delivered + %v dropped != %d appended", name, len(got), dropped, n)
		}
	}
}

// A closed spool's bytes leave the budget (a flow stopped by a reload); a new bound applies
// to the spools left.
func TestBudgetCloseAndSetMax(t *testing.T) {
	b := NewBudget(0)
	a := budgetSpool(t, b, false)
	mustAppend(t, a, payloadFor(1, budgetFrame))
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, want := b.Used(), a.Stats().Bytes; got != want {
		t.Fatalf("budget used %d, spool holds %d", got, want)
	}
	b.SetMax(budgetGlobal)
	if b.Max() != budgetGlobal {
		t.Fatalf("max %d", b.Max())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := b.Used(); got != 0 {
		t.Fatalf("budget used %d after the only spool closed", got)
	}
}

// An Append waiting for the budget returns ErrClosed when its spool is closed (a flow
// stopped during an outage), and the other spool's waiting Append is woken: the closed
// spool's bytes left the budget, so it appends on (up to its own bound).
func TestBudgetWaiterReturnsOnClose(t *testing.T) {
	b := NewBudget(budgetGlobal)
	a, c := budgetSpool(t, b, false), budgetSpool(t, b, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	for _, s := range []*Spool{a, c} {
		go func() { errs <- appendAll(ctx, s, b, 300, 2) }()
	}
	waitFor(t, "both appenders blocked", func() bool { return isFull(a) && isFull(c) })
	before := c.Stats().Bytes
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("the closed spool's Append returned %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an Append waiting for the budget did not return after Close")
	}
	waitFor(t, "the other spool to append on", func() bool { return c.Stats().Bytes > before+4*budgetFrame })
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("the other spool's Append: %v", err)
	}
}
