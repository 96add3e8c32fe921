package shipper

import (
	"context"
	"testing"
	"time"
)

// Idle is called when the shipper has nothing to send and nothing in flight, and never
// while a request is on the wire: upstream may then hand over what it holds without
// costing throughput.
func TestIdleOnlyWithNothingInFlight(t *testing.T) {
	release := make(chan struct{})
	inPut := make(chan struct{}, 1)
	dst := &fakeDest{put: func(ctx context.Context, call int, recs []Record) ([]error, error) {
		if call == 0 {
			inPut <- struct{}{}
			<-release
		}
		return nil, nil
	}}
	idle := make(chan struct{}, 16)
	src := newFakeSource(nil)
	s := New(src, dst, Options{Idle: func() { idle <- struct{}{} }})
	runShipper(t, s)

	waitIdle := func(what string) {
		t.Helper()
		select {
		case <-idle:
		case <-time.After(10 * time.Second):
			t.Fatalf("Idle not called %s", what)
		}
	}
	waitIdle("at start, with an empty source")

	src.push(items(1, 4)...)
	<-inPut
	select {
	case <-idle:
		t.Fatal("Idle called while a request was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	waitIdle("once the request in flight was done")
	waitAcked(t, src, 10*time.Second)
}
