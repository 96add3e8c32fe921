package flow

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/shipper"
)

// heldDestination holds the shipper in Limits, which it calls first thing in its goroutine,
// until released.
type heldDestination struct {
	entered, release chan struct{}
	once             *sync.Once
}

func (d heldDestination) Limits() shipper.Limits {
	d.once.Do(func() { close(d.entered) })
	<-d.release
	return shipper.Limits{}.WithDefaults()
}

func (d heldDestination) Put(_ context.Context, recs []shipper.Record) ([]error, error) {
	return make([]error, len(recs)), nil
}

// A flow that fails to start returns only once everything it started has stopped: a
// supervisor restarting it (or a reload) must not find the old shipper still running on
// the same spool.
func TestRunThatFailsToStartLeavesNoGoroutine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(*config.Flow)
		want  string
	}{
		{"tailer", func(c *config.Flow) { c.Paths = []string{"relative/*.log"} }, "not absolute"},
		{"aggregator", func(c *config.Flow) { c.Batch.MaxRecords = -1 }, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse("test.yaml", []byte("flows:\n  - {name: t, paths: [\"/nonexistent/*.log\"], discard: {}}\n"))
			if err != nil {
				t.Fatal(err)
			}
			fc := cfg.Flows[0]
			tc.spoil(&fc)
			before := runtime.NumGoroutine()
			dst := heldDestination{entered: make(chan struct{}), release: make(chan struct{}), once: new(sync.Once)}
			f, err := New(fc, Deps{Dir: t.TempDir(), Destination: dst})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- f.Run(context.Background(), false) }()
			<-dst.entered
			select {
			case err := <-done:
				close(dst.release)
				t.Fatalf("Run returned (%v) while its shipper was still running", err)
			case <-time.After(200 * time.Millisecond):
			}
			close(dst.release)
			if err := <-done; err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run returned %v, want an error with %q", err, tc.want)
			}
			waitFor(t, "the goroutines Run started to end", func() bool { return runtime.NumGoroutine() <= before })
		})
	}
}
