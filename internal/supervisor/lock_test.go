package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/spool"
)

// lockedSetup returns a configuration with one flow and holds that flow's spool directory
// the way a dying agent still does for a moment after kill -9; release lets it go.
func lockedSetup(t *testing.T) (cfg *config.Config, release func()) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse("k.yaml", []byte(fmt.Sprintf("state_dir: %s\nflows:\n  - {name: app, paths: [%q], discard: {}}\n",
		filepath.Join(dir, "state"), dir+"/*.log")))
	if err != nil {
		t.Fatal(err)
	}
	held, err := spool.Open(spool.Options{Dir: filepath.Join(cfg.FlowDir(&cfg.Flows[0]), "spool")})
	if err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			if err := held.Close(); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(release)
	return cfg, release
}

// An agent started while the previous one is still exiting waits for the spool lock
// (saying so once) instead of failing at once.
func TestStartWaitsForASpoolLockBeingReleased(t *testing.T) {
	cfg, release := lockedSetup(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	logs := &syncBuffer{}
	s := New(ctx, cfg, metrics.New(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(logs, nil)), false)
	s.lockWait = time.Hour // the test releases the lock itself
	started := make(chan error, 1)
	go func() { started <- s.StartAll() }()
	deadline := time.Now().Add(30 * time.Second) // only stops a broken test from hanging
	for !strings.Contains(logs.String(), "spool directory locked") {
		select {
		case err := <-started:
			t.Fatalf("start did not wait for the lock: %v\n%s", err, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no word about the lock:\n%s", logs.String())
		}
	}
	release()
	if err := <-started; err != nil {
		t.Fatalf("start after the lock was released: %v", err)
	}
	if n := strings.Count(logs.String(), "spool directory locked"); n != 1 {
		t.Errorf("%d log lines about the lock, want 1:\n%s", n, logs.String())
	}
	cancel()
	if err := s.Wait(nil, nil); err != nil {
		t.Fatal(err)
	}
}

// A lock that stays held fails the start after the bounded wait, saying what to do.
func TestStartFailsWhenTheSpoolStaysLocked(t *testing.T) {
	cfg, _ := lockedSetup(t)
	s := New(t.Context(), cfg, metrics.New(prometheus.NewRegistry()), slog.New(slog.DiscardHandler), false)
	s.lockWait = 3 * lockRetry
	err := s.StartAll()
	if !errors.Is(err, spool.ErrLocked) {
		t.Fatalf("start with a held lock: %v, want spool.ErrLocked", err)
	}
	for _, want := range []string{"flow app", "another kinship process", "Stop it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
