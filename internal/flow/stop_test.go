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
)

// A stop while the spool is full (when_full: block, destination down) ends Run within the
// shutdown grace: the tailer is blocked in the aggregator behind a put that waits for room,
// and the stop must reach that put, not wait for the tailer to return first. The lines not
// spooled stay in the file (positions never passed them), so the stop is not an error.
func TestStopWhileTheSpoolIsFull(t *testing.T) { eachWriteMode(t, testStopWhileTheSpoolIsFull) }

func testStopWhileTheSpoolIsFull(t *testing.T, mode string) {
	logs := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	var sb strings.Builder
	buf := make([]byte, 90)
	for i := range 5000 {
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		fmt.Fprintf(&sb, "%06d %s\n", i, hex.EncodeToString(buf)) // hardly compressible
	}
	if err := os.WriteFile(filepath.Join(logs, "a.log"), []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("test.yaml", fmt.Appendf(nil, `flows:
  - {name: a, paths: [%q], start_at: beginning, discard: {}, batch: {max_bytes: 8KiB, max_age: 10ms},
     spool: {max_bytes: 64KiB, segment_bytes: 16KiB, fsync_interval: 5ms, write: %s}}
`, filepath.Join(logs, "a.log"), mode))
	if err != nil {
		t.Fatal(err)
	}
	var delivered atomic.Int64
	f, err := New(cfg.Flows[0], Deps{Dir: t.TempDir(), ShutdownGrace: 200 * time.Millisecond,
		Destination: gatedDestination{gate: make(chan struct{}), lines: &delivered}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, false) }()
	deadline := time.Now().Add(30 * time.Second)
	for f.spool.Stats().Bytes < 64<<10 {
		if time.Now().After(deadline) {
			t.Fatal("the spool never filled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the tailer blocks behind the full spool
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after a stop: %v (a stop whose grace ran out is not a failure)", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return within 15 s of the stop (shutdown grace 200 ms) while the spool was full")
	}
}
