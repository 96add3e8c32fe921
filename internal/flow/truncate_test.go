package flow

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/shipper"
)

// With the defaults (max_line_bytes 1MiB, records of 1MiB with a random 32-byte key), a line
// longer than what fits in a record next to its key is cut once, to what fits, ending with
// truncated_record_terminator, and counted once; a line that fits is never cut.
func TestLongLinesCutOnceToWhatFitsAtDefaults(t *testing.T) {
	const term = " [TRUNCATED]"
	const maxLine = 1 << 20
	const fits = maxLine - 32 // what one record holds next to a random partition key
	dir := t.TempDir()
	lines := map[string][]byte{
		"max_line_bytes-1":  bytes.Repeat([]byte("a"), maxLine-1),
		"max_line_bytes+10": bytes.Repeat([]byte("b"), maxLine+10),
		"exactly what fits": bytes.Repeat([]byte("c"), fits),
		"short":             []byte("d short line"),
	}
	var file []byte
	for _, name := range []string{"max_line_bytes-1", "exactly what fits", "max_line_bytes+10", "short"} {
		file = append(append(file, lines[name]...), '\n')
	}
	if err := os.WriteFile(filepath.Join(dir, "app.log"), file, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("t.yaml", fmt.Appendf(nil, `
flows:
  - name: cut
    paths: [%q]
    truncated_record_terminator: %q
    kinesis: {stream: s}
`, filepath.Join(dir, "*.log"), term))
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(prometheus.NewRegistry()).Flow("cut")
	dst := chanDest{got: make(chan shipper.Record, 16)}
	var logged bytes.Buffer // written by the handler under its lock; read after Run returned
	log := slog.New(slog.NewTextHandler(&logged, nil))
	f, err := New(cfg.Flows[0], Deps{Dir: filepath.Join(dir, "state"), Destination: dst, Metrics: m, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.Run(ctx, true); err != nil {
		t.Fatal(err)
	}
	byFirst := map[byte][]byte{}
	for len(byFirst) < 4 {
		select {
		case r := <-dst.got:
			if n := len(r.Data) + len(r.PartitionKey); n > int(config.DefaultMaxRecordBytes) {
				t.Errorf("record of %d bytes with its key, over the %d limit", n, config.DefaultMaxRecordBytes)
			}
			urs, _, _ := aggregator.Deaggregate(r.Data, r.PartitionKey)
			for _, u := range urs {
				byFirst[u.Data[0]] = u.Data
			}
		default:
			t.Fatalf("%d lines shipped, want 4", len(byFirst))
		}
	}
	for _, c := range []struct {
		name  string
		first byte
	}{{"max_line_bytes-1", 'a'}, {"max_line_bytes+10", 'b'}} {
		got := byFirst[c.first]
		if len(got) != fits || !strings.HasSuffix(string(got), term) || !bytes.Equal(got[:fits-len(term)], lines[c.name][:fits-len(term)]) {
			t.Errorf("line of %s: shipped %d bytes ending %q; want %d bytes: its start, then %q",
				c.name, len(got), got[max(0, len(got)-len(term)):], fits, term)
		}
	}
	if !bytes.Equal(byFirst['c'], lines["exactly what fits"]) || !bytes.Equal(byFirst['d'], lines["short"]) {
		t.Errorf("lines that fit were changed: %d and %q bytes", len(byFirst['c']), byFirst['d'])
	}
	var d dto.Metric
	if err := m.LinesTruncated.Write(&d); err != nil {
		t.Fatal(err)
	}
	if n := d.GetCounter().GetValue(); n != 2 {
		t.Errorf("kinship_lines_truncated_total %v, want 2 (each cut line once)", n)
	}
	if n := strings.Count(logged.String(), "being cut"); n != 1 {
		t.Errorf("%d log lines say lines are being cut, want 1 (rate-limited):\n%s", n, logged.String())
	}
}
