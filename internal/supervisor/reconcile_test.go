package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func parseConfig(t *testing.T, body string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("k.yaml", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestReconcileStartsWhatIsMissingStopsWhatIsNotWanted(t *testing.T) {
	before := parseConfig(t, `state_dir: /s
flows:
  - {name: same, paths: [/x/*.log], discard: {}}
  - {name: changed, paths: [/x/*.log], discard: {}}
  - {name: failed, paths: [/x/*.log], discard: {}}
  - {name: removed, paths: [/x/*.log], discard: {}}
`)
	running := map[string]flowState{}
	for _, fc := range before.Flows {
		running[fc.Name] = flowState{cfg: fc, dir: before.FlowDir(&fc), exited: fc.Name == "failed"}
	}
	after := parseConfig(t, `state_dir: /s
# the comment moves every flow down a line: positions do not matter
flows:
  - {name: added, paths: [/x/*.log], discard: {}}
  - {name: same, paths: [/x/*.log], discard: {}}
  - {name: changed, paths: [/x/*.log, /y/*.log], discard: {}}
  - {name: failed, paths: [/x/*.log], discard: {}}
`)
	p := reconcile(running, after)
	var started []string
	for _, fc := range p.start {
		started = append(started, fc.Name)
	}
	if want := []string{"added", "changed", "failed"}; !reflect.DeepEqual(started, want) {
		t.Errorf("start %v, want %v (configuration order)", started, want)
	}
	if want := []string{"removed"}; !reflect.DeepEqual(p.stop, want) {
		t.Errorf("stop %v, want %v", p.stop, want)
	}
	if want := []string{"same"}; !reflect.DeepEqual(p.keep, want) {
		t.Errorf("keep %v, want %v", p.keep, want)
	}

	// A state_dir that moved moves every flow's spool: each restarts in its new place.
	moved := parseConfig(t, "state_dir: /t\nflows:\n  - {name: same, paths: [/x/*.log], discard: {}}\n")
	if p := reconcile(running, moved); len(p.start) != 1 || len(p.keep) != 0 {
		t.Errorf("state_dir moved: %+v", p)
	}
	// Nothing running, nothing wanted: nothing to do.
	if p := reconcile(nil, &config.Config{}); len(p.start)+len(p.stop)+len(p.keep) != 0 {
		t.Errorf("empty: %+v", p)
	}
}

// runs records which fake flows run.
type runs struct {
	mu      sync.Mutex
	opened  map[string]int // versions opened, by flow name
	running map[string]int // the version running now, by name (absent: stopped)
}

func (r *runs) opener(_ *config.Config, fc config.Flow) (pipeline, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opened[fc.Name]++
	return &versionedFlow{runs: r, name: fc.Name, version: r.opened[fc.Name]}, nil
}

func (r *runs) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.running {
		out[k] = v
	}
	return out
}

type versionedFlow struct {
	fakeFlow
	runs    *runs
	name    string
	version int
}

func (f *versionedFlow) Run(ctx context.Context, _ bool) error {
	f.runs.mu.Lock()
	if v, ok := f.runs.running[f.name]; ok {
		f.runs.mu.Unlock()
		return fmt.Errorf("version %d of %s started while version %d runs", f.version, f.name, v)
	}
	f.runs.running[f.name] = f.version
	f.runs.mu.Unlock()
	<-ctx.Done()
	f.runs.mu.Lock()
	delete(f.runs.running, f.name)
	f.runs.mu.Unlock()
	return nil
}

// Reload leaves unchanged flows running (the same version), restarts changed ones (the old
// version stopped before the new one runs), starts added ones and stops removed ones.
func TestReloadRestartsOnlyWhatChanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kinship.yaml")
	write := func(flows ...string) {
		body := fmt.Sprintf("state_dir: %s\nflows:\n", filepath.Join(dir, "state"))
		for _, f := range flows {
			body += "  - " + f + "\n"
		}
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("{name: same, paths: [/x/*.log], discard: {}}", "{name: changed, paths: [/x/*.log], discard: {}}",
		"{name: removed, paths: [/x/*.log], discard: {}}")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	set := metrics.New(reg)
	s := New(ctx, cfg, set, slog.New(slog.NewTextHandler(logs, nil)), false)
	r := &runs{opened: map[string]int{}, running: map[string]int{}}
	s.open = r.opener
	if err := s.StartAll(); err != nil {
		t.Fatal(err)
	}
	waitRunning := func(want map[string]int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second) // only stops a broken test from hanging
		for !reflect.DeepEqual(r.snapshot(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("running %v, want %v", r.snapshot(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitRunning(map[string]int{"same": 1, "changed": 1, "removed": 1})
	for _, name := range []string{"same", "changed", "removed"} {
		set.Flow(name).LinesRead.Inc() // as the flows' tailers would
	}

	write("{name: added, paths: [/x/*.log], discard: {}}", "{name: same, paths: [/x/*.log], discard: {}}",
		"{name: changed, paths: [/x/*.log], batch: {max_age: 2s}, discard: {}}")
	s.Reload(path)
	waitRunning(map[string]int{"same": 1, "changed": 2, "added": 1})
	if !strings.Contains(logs.String(), `msg="configuration reloaded" added=[added] changed=[changed] removed=[removed] unchanged=[same]`) {
		t.Errorf("reload log:\n%s", logs.String())
	}
	// The removed flow's series leave /metrics; the others keep theirs.
	if got := testutil.CollectAndCount(reg, "kinship_lines_read_total"); got != 2 {
		t.Errorf("kinship_lines_read_total has %d series after removing a flow, want 2 (same, changed)", got)
	}

	// An invalid configuration changes nothing.
	if err := os.WriteFile(path, []byte("flows: [{name: x}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Reload(path)
	waitRunning(map[string]int{"same": 1, "changed": 2, "added": 1})

	cancel()
	if err := s.Wait(nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := r.snapshot(); len(got) != 0 {
		t.Errorf("still running after the stop: %v", got)
	}
}
