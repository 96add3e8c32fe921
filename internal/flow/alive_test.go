package flow

import (
	"context"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/shipper"
)

// The systemd watchdog is petted only while Alive: it must say no before Run, yes while the
// flow runs, and no again once Run returned (a dead flow must get the agent restarted).
func TestAliveOnlyWhileRunning(t *testing.T) {
	cfg, err := config.Parse("test.yaml", []byte(`
flows:
  - name: t
    paths: ["/nonexistent/*.log"]
    discard: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(cfg.Flows[0], Deps{Dir: t.TempDir(), Destination: shipper.Discard{}, CheckpointInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if f.Alive(time.Now()) {
		t.Fatal("alive before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, false) }()
	deadline := time.Now().Add(10 * time.Second)
	for !f.Alive(time.Now()) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("not alive 10 s after Run started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A beat older than the window is a wedged flow, even while Run has not returned.
	if f.Alive(time.Now().Add(time.Hour)) {
		t.Error("alive although the last heartbeat is an hour old")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f.Alive(time.Now()) {
		t.Error("alive after Run returned")
	}
}
