package flow

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/shipper"
	"github.com/kinship-agent/kinship/spool"
)

// gatedDestination accepts records only once the gate is open: a destination outage.
type gatedDestination struct {
	gate  chan struct{}
	lines *atomic.Int64
}

func (d gatedDestination) Put(ctx context.Context, recs []shipper.Record) ([]error, error) {
	select {
	case <-d.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for _, r := range recs {
		d.lines.Add(int64(r.UserRecords))
	}
	return nil, nil
}

func (gatedDestination) Limits() shipper.Limits { return shipper.Limits{}.WithDefaults() }

// Two flows share a global spool bound smaller than their own bounds together; their
// destination is down: the spools stop at the global bound and the tailers stop reading
// (backpressure). When the destination returns, every line of both flows arrives.
func TestGlobalBudgetOutageThenEverythingArrives(t *testing.T) {
	const (
		lines   = 8000
		global  = 128 << 10
		segment = 16 << 10
	)
	logs := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	yaml := "flows:\n"
	for _, name := range []string{"a", "b"} {
		var sb strings.Builder
		buf := make([]byte, 90)
		for i := range lines {
			for j := range buf {
				buf[j] = byte(rng.Uint32())
			}
			fmt.Fprintf(&sb, "%s %06d %s\n", name, i, hex.EncodeToString(buf)) // hardly compressible
		}
		if err := os.WriteFile(filepath.Join(logs, name+".log"), []byte(sb.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		yaml += fmt.Sprintf("  - {name: %s, paths: [%q], discard: {}, batch: {max_bytes: 8KiB, max_age: 10ms},"+
			" spool: {max_bytes: 256KiB, segment_bytes: 16KiB, fsync_interval: 5ms}}\n", name, filepath.Join(logs, name+".log"))
	}
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	budget := spool.NewBudget(global)
	gate := make(chan struct{})
	type run struct {
		f     *Flow
		lines atomic.Int64
		done  chan error
	}
	runs := make([]*run, len(cfg.Flows))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, fc := range cfg.Flows {
		r := &run{done: make(chan error, 1)}
		f, err := New(fc, Deps{Dir: t.TempDir(), Destination: gatedDestination{gate: gate, lines: &r.lines},
			Budget: budget, CheckpointInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		r.f = f
		runs[i] = r
		go func() { r.done <- f.Run(ctx, true) }()
	}
	// The outage: the spools fill up to the global bound (each past its reserve, the shared
	// part taken), and no further.
	deadline := time.Now().Add(30 * time.Second)
	for budget.Used() < global {
		if time.Now().After(deadline) {
			t.Fatalf("spools hold %d bytes together, never reached the bound %d", budget.Used(), global)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // give an unbounded spool the chance to show itself
	if used := budget.Used(); used > global+2*segment {
		t.Fatalf("spools hold %d bytes together, over the bound %d + one segment per flow", used, global)
	}
	for _, r := range runs {
		if st := r.f.spool.Stats(); st.Bytes >= 256<<10 {
			t.Fatalf("flow %s holds %d bytes: stopped by its own bound, not the global one", r.f.cfg.Name, st.Bytes)
		}
	}
	close(gate) // the destination is back
	for _, r := range runs {
		if err := <-r.done; err != nil {
			t.Fatalf("flow %s: %v", r.f.cfg.Name, err)
		}
		if got := r.lines.Load(); got != lines {
			t.Errorf("flow %s: %d lines delivered, want %d", r.f.cfg.Name, got, lines)
		}
	}
	if used := budget.Used(); used != 0 {
		t.Errorf("after both flows stopped the budget still counts %d bytes", used)
	}
}
