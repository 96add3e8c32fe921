package supervisor

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/kacheckpoint/kacheckpointtest"
	"github.com/kinship-agent/kinship/internal/metrics"
)

// An agent.json flow asks the Kinesis Agent's checkpointFile at its first start: a checkpoint
// of its own flow id becomes the file's position, one that no longer fits is logged with its
// reason; a missing file is no error.
func TestAgentJSONFlowImportsTheKinesisAgentsCheckpoints(t *testing.T) {
	logs := t.TempDir()
	a, b := filepath.Join(logs, "a.log"), filepath.Join(logs, "b.log")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, []byte("line one\nline two\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// b.log is the older file: with its checkpoint unusable, it is one the agent had done with.
	if err := os.Chtimes(b, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "checkpoints")
	id := "kinesis:app-logs:" + filepath.Join(logs, "*.log")
	beyond := kacheckpointtest.Checkpoint(t, id, b, 9)
	beyond.Offset = 1000
	kacheckpointtest.Write(t, db, "", kacheckpointtest.Checkpoint(t, id, a, 9), beyond,
		kacheckpointtest.Checkpoint(t, "kinesis:another-stream:"+filepath.Join(logs, "*.log"), b, 9))

	cfg, err := config.Parse("agent.json", []byte(`{"checkpointFile": "`+db+`", "cloudwatch.emitMetrics": false,
  "flows": [{"filePattern": "`+filepath.Join(logs, "*.log")+`", "kinesisStream": "app-logs"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s := New(t.Context(), cfg, metrics.New(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(&out, nil)), false)
	imp := s.agentCheckpoints(cfg, cfg.Flows[0])
	if imp == nil {
		t.Fatal("an agent.json flow asks nothing of the Kinesis Agent's checkpoints")
	}
	ps := imp()
	got := map[string]int64{}
	for _, p := range ps {
		got[p.Path] = p.Offset
	}
	if len(got) != 2 || got[a] != 9 || got[b] != 18 {
		t.Fatalf("positions %+v, want %s at 9 and %s at its end", ps, a, b)
	}
	for _, want := range []string{"Kinesis Agent checkpoint imported", "path=" + a,
		"Kinesis Agent checkpoint skipped", "path=" + b, "offset beyond the file's size", "files_placed=2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, out.String())
		}
	}

	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if ps := imp(); len(ps) != 0 || !strings.Contains(out.String(), "no Kinesis Agent checkpoints to import") {
		t.Fatalf("without the database: %+v\n%s", ps, out.String())
	}

	native, err := config.Parse("kinship.yaml", []byte("flows:\n  - {name: app, paths: [\""+filepath.Join(logs, "*.log")+"\"], kinesis: {stream: app-logs}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.agentCheckpoints(native, native.Flows[0]) != nil {
		t.Fatal("a native configuration has no checkpointFile to import")
	}
}
