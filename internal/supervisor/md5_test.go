package supervisor

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/internal/metrics"
)

// Flows of one process hash their aggregates with one MD5 server, started with the first
// flow; every flow still ships all of its lines (--once finishes only then), and Wait
// closes the server after them.
func TestFlowsShareOneMD5Server(t *testing.T) {
	dir := t.TempDir()
	body := fmt.Sprintf("state_dir: %s\nflows:\n", filepath.Join(dir, "state"))
	for _, name := range []string{"a", "b", "c"} {
		logs := filepath.Join(dir, name)
		if err := os.MkdirAll(logs, 0o755); err != nil {
			t.Fatal(err)
		}
		// Several full aggregates of 64 KiB per flow, so that their hash workers run.
		line := append(bytes.Repeat([]byte(name), 300), '\n')
		if err := os.WriteFile(filepath.Join(logs, "app.log"), bytes.Repeat(line, 2000), 0o644); err != nil {
			t.Fatal(err)
		}
		body += fmt.Sprintf("  - {name: %s, paths: [%q], discard: {}, start_at: beginning, batch: {max_bytes: 64KiB}}\n", name, logs+"/*.log")
	}
	cfg := parseConfig(t, body)
	s := New(t.Context(), cfg, metrics.New(prometheus.NewRegistry()), slog.New(slog.DiscardHandler), true)
	if s.md5 != nil {
		t.Fatal("an MD5 server before any flow")
	}
	if err := s.StartAll(); err != nil {
		t.Fatal(err)
	}
	srv := s.md5
	if srv == nil {
		t.Fatal("flows started without the process's MD5 server")
	}
	if err := s.Wait(nil, func() {}); err != nil {
		t.Fatal(err)
	}
	if s.md5 != srv {
		t.Fatal("a flow started a second MD5 server")
	}
	for _, fc := range cfg.Flows {
		r := s.flows[fc.Name]
		if r == nil {
			t.Fatalf("flow %s is gone", fc.Name)
		}
		files := r.f.Status().Files
		if len(files) != 1 || files[0].Position != files[0].Size || files[0].Size == 0 {
			t.Errorf("flow %s: files %+v, want its one file shipped to its end", fc.Name, files)
		}
	}
}
