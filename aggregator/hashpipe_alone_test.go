package aggregator

import (
	"sync"
	"testing"
	"time"
)

// summerSpy is a hashJob that records the summer it was hashed with.
type summerSpy struct {
	got  summer
	done chan struct{}
}

func (s *summerSpy) hash(sum summer) { s.got = sum; close(s.done) }

// An aggregate hashed alone (sealed by age, Nudge, Flush or Close: every one at a steady
// moderate rate) is hashed by crypto/md5 on its worker, not handed to md5-simd's server,
// which would run its slower scalar code for it; a batch of minLanes or more goes through the
// lanes. On a CPU without lanes both are crypto/md5.
func TestAggregateHashedAloneSkipsTheLanes(t *testing.T) {
	srv := NewMD5Server()
	defer srv.Close()
	p := newHashPipeline(Options{Aggregate: true, MD5: srv, Workers: 8, IdleAge: time.Hour, batchWait: time.Hour}, 0)
	var wg sync.WaitGroup
	p.start(&wg)
	defer func() { p.shut(); wg.Wait() }()
	wait := func(s *summerSpy) {
		t.Helper()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Fatal("job not hashed within 10 s")
		}
	}

	alone := &summerSpy{done: make(chan struct{})}
	p.submit(alone, false) // not full: hashed at once, by itself
	wait(alone)
	if _, ok := alone.got.(*scalarSummer); !ok {
		t.Errorf("an aggregate hashed alone went to %T, want crypto/md5 (*scalarSummer)", alone.got)
	}

	if srv.Lanes() < minLanes {
		t.Logf("this CPU has %d MD5 lane(s): every aggregate is hashed by crypto/md5", srv.Lanes())
		return
	}
	batch := make([]*summerSpy, p.batch)
	for i := range batch {
		batch[i] = &summerSpy{done: make(chan struct{})}
		p.submit(batch[i], true) // full: held until a batch waits, then hashed side by side
	}
	for i, s := range batch {
		wait(s)
		if _, ok := s.got.(*laneSummer); !ok {
			t.Errorf("aggregate %d of a batch of %d went to %T, want the lanes (*laneSummer)", i, len(batch), s.got)
		}
	}
}
