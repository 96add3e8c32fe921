package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/kacheckpoint/kacheckpointtest"
	"github.com/kinship-agent/kinship/spool"
)

// import-checkpoints prints what it does per flow and file, saves the positions, refuses
// flows that have their own unless --force, and refuses while kinship runs.
func TestImportCheckpoints(t *testing.T) {
	logs, state := t.TempDir(), t.TempDir()
	a, other := filepath.Join(logs, "a.log"), filepath.Join(logs, "other.log")
	if err := os.WriteFile(a, []byte("sent\nnot yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, []byte("never checkpointed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(other, old, old); err != nil { // older than the checkpointed file
		t.Fatal(err)
	}
	pattern := filepath.Join(logs, "*.log")
	db := filepath.Join(t.TempDir(), "checkpoints")
	kacheckpointtest.Write(t, db, "",
		kacheckpointtest.Checkpoint(t, "kinesis:app-logs:"+pattern, a, 5),
		kacheckpointtest.Checkpoint(t, "kinesis:retired:/var/log/old/*.log", a, 1))
	cfgPath := filepath.Join(t.TempDir(), "kinship.yaml")
	if err := os.WriteFile(cfgPath, []byte("state_dir: "+state+"\nflows:\n  - name: app\n    paths: [\""+pattern+"\"]\n    start_at: end\n    kinesis: {stream: app-logs}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"import-checkpoints", "--config", cfgPath, "--from", db}

	var out, errOut bytes.Buffer
	if code := runMain(args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		"flow app (kinesis:app-logs:" + pattern + "):",
		a + " 5 imported",
		other + " 19 no checkpoint, not modified after the last checkpointed file: at its end",
		"checkpoints of no flow of this configuration, not imported: kinesis:retired:/var/log/old/*.log (1)",
		"flow app: 2 positions saved",
	} {
		if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	var pf struct {
		Files []struct {
			Path   string `json:"path"`
			Offset int64  `json:"offset"`
		} `json:"files"`
	}
	b, err := os.ReadFile(filepath.Join(state, "flows", "app", "positions.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pf); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, f := range pf.Files {
		got[f.Path] = f.Offset
	}
	if got[a] != 5 || got[other] != 19 || len(got) != 2 {
		t.Fatalf("positions.json: %s", b)
	}

	out.Reset()
	errOut.Reset()
	if code := runMain(args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "already have positions") {
		t.Fatalf("second import: exit %d\n%s", code, errOut.String())
	}
	if code := runMain(append(args, "--force"), &out, &errOut); code != 0 {
		t.Fatalf("forced: exit %d\n%s", code, errOut.String())
	}

	sp, err := spool.Open(spool.Options{Dir: filepath.Join(state, "flows", "app", "spool")})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	errOut.Reset()
	if code := runMain(append(args, "--force"), &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "kinship is running") {
		t.Fatalf("while running: exit %d\n%s", code, errOut.String())
	}
}
