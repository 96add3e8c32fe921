package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/spool"
)

// A flow removed from the configuration leaves a spool with unshipped records: it is
// reported (log line with what to do, metric, status), never deleted, and not counted in the
// global bound; once the flow is back, the report goes away.
func TestOrphanSpoolReported(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	oldSpool := filepath.Join(state, "flows", "old", "spool")
	sp, err := spool.Open(spool.Options{Dir: oldSpool})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := sp.Append(context.Background(), []byte("never shipped")); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	held, err := spool.Inspect(oldSpool)
	if err != nil {
		t.Fatal(err)
	}

	parse := func(flows ...string) *config.Config {
		body := fmt.Sprintf("state_dir: %s\nspool: {max_bytes: 1GiB}\nflows:\n", state)
		for _, f := range flows {
			body += fmt.Sprintf("  - {name: %s, paths: [%q], discard: {}}\n", f, dir+"/*.log")
		}
		cfg, err := config.Parse("k.yaml", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	sup := New(t.Context(), parse("app"), metrics.New(reg), slog.New(slog.NewTextHandler(logs, nil)), false)
	sup.ExportBudget()
	sup.reportOrphans(sup.cfg)

	for _, want := range []string{"flow=old", fmt.Sprintf("bytes=%d", held.Bytes), "unacked_frames=3", "restore the flow", "delete its directory"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if n := strings.Count(logs.String(), "still has unshipped records"); n != 1 {
		t.Errorf("%d warnings, want one per orphaned flow", n)
	}
	gauge := func() string {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "kinship_orphan_spool_bytes" && len(mf.GetMetric()) > 0 {
				m := mf.GetMetric()[0]
				return fmt.Sprintf("%s=%v", m.GetLabel()[0].GetValue(), m.GetGauge().GetValue())
			}
		}
		return "none"
	}
	if got, want := gauge(), fmt.Sprintf("old=%d", held.Bytes); got != want {
		t.Errorf("kinship_orphan_spool_bytes: %s, want %s", got, want)
	}
	if got := gaugeValue(t, reg, "kinship_spool_global_bytes"); got != 0 {
		t.Errorf("the orphaned spool counts %v bytes towards the global bound", got)
	}
	if got := gaugeValue(t, reg, "kinship_spool_global_max_bytes"); got != 1<<30 {
		t.Errorf("kinship_spool_global_max_bytes = %v, want 1GiB", got)
	}
	if _, err := os.Stat(oldSpool); err != nil {
		t.Errorf("orphaned spool: %v", err)
	}

	// The flow comes back (a reload): no more orphan.
	sup.reportOrphans(parse("app", "old"))
	if got := gauge(); got != "none" {
		t.Errorf("kinship_orphan_spool_bytes after the flow came back: %s", got)
	}

}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not exported", name)
	return 0
}

// syncBuffer collects a logger's output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
