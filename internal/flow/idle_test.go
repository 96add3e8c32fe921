package flow

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/shipper"
)

// chanDest hands every record it is given to a channel.
type chanDest struct{ got chan shipper.Record }

func (d chanDest) Limits() shipper.Limits { return shipper.Limits{}.WithDefaults() }

func (d chanDest) Put(ctx context.Context, recs []shipper.Record) ([]error, error) {
	for _, r := range recs {
		r.Data = append([]byte(nil), r.Data...)
		select {
		case d.got <- r:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, nil
}

// At a low rate a line does not wait for batch.max_age: the shipper is idle, so the
// aggregate leaves early. With max_age 30 s, lines arrive within seconds.
func TestIdleShipperGetsLinesBeforeMaxAge(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "app.log")
	if err := os.WriteFile(logPath, []byte("one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("t.yaml", fmt.Appendf(nil, `
flows:
  - name: idle
    paths: [%q]
    start_at: beginning
    kinesis: {stream: s}
    batch: {max_age: 30s}
`, filepath.Join(dir, "*.log")))
	if err != nil {
		t.Fatal(err)
	}
	dst := chanDest{got: make(chan shipper.Record, 16)}
	f, err := New(cfg.Flows[0], Deps{Dir: filepath.Join(dir, "state"), Destination: dst})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, false) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	expect := func(want string) {
		t.Helper()
		select {
		case r := <-dst.got:
			urs, _, _ := aggregator.Deaggregate(r.Data, r.PartitionKey)
			if len(urs) != 1 || string(urs[0].Data) != want {
				t.Fatalf("got %d user records (%q...), want %q", len(urs), urs[0].Data, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q not shipped within 10 s (batch.max_age 30 s)", want)
		}
	}
	expect("one")
	lf, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	for _, l := range []string{"two", "three"} {
		if _, err := lf.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
		expect(l)
	}
}
