package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/config"
)

func TestProgressLine(t *testing.T) {
	start := time.Unix(1000, 0)
	p := &progress{start: start}
	got := p.line(start.Add(2*time.Second), 50e6, 150e6)
	if got != "read 50.0 / 200.0 MB (25%)  25.0 MB/s" {
		t.Errorf("line = %q", got)
	}
	// The total never shrinks when the lag gauge lags behind the reads.
	if got := p.line(start.Add(4*time.Second), 100e6, 0); !strings.Contains(got, "/ 200.0 MB (50%)") {
		t.Errorf("line = %q", got)
	}
	if isTerminal(&strings.Builder{}) {
		t.Error("a buffer is a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a regular file is a terminal: run --once would write progress into logs")
	}
}

// `kinship status` after a `run --once`: every file read to its end, nothing waiting; a flow
// removed from the configuration is still listed because its state is on disk.
func TestStatusAfterOnce(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(logs, "a.log"), []byte(strings.Repeat("hello\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "kinship.yaml")
	write := func(flows string) {
		body := fmt.Sprintf("state_dir: %s\nflows:\n%s", filepath.Join(dir, "state"), flows)
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("  - {name: app, paths: [%q], discard: {}}\n  - {name: old, paths: [%q], discard: {}}\n",
		logs+"/*.log", logs+"/*.log"))
	var out, errOut strings.Builder
	if code := runMain([]string{"run", "--config", cfgPath, "--once"}, &out, &errOut); code != 0 {
		t.Fatalf("run --once: exit %d\n%s", code, errOut.String())
	}
	write(fmt.Sprintf("  - {name: app, paths: [%q], discard: {}}\n", logs+"/*.log"))
	out.Reset()
	if code := runMain([]string{"status", "--config", cfgPath, "--json"}, &out, &errOut); code != 0 {
		t.Fatalf("status: exit %d\n%s", code, errOut.String())
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out.String())
	}
	if len(rep.Flows) != 2 || rep.Flows[0].Name != "app" || !rep.Flows[0].Configured ||
		rep.Flows[1].Name != "old" || rep.Flows[1].Configured {
		t.Fatalf("flows = %+v, want app (configured) and old (removed)", rep.Flows)
	}
	for _, f := range rep.Flows {
		if len(f.Files) != 1 || f.Files[0].Position != 6000 || f.Files[0].LagBytes != 0 || f.Spool.UnackedFrames != 0 {
			t.Errorf("flow %s after --once: %+v", f.Name, f)
		}
	}
	out.Reset()
	if code := runMain([]string{"status", "--config", cfgPath}, &out, &errOut); code != 0 {
		t.Fatalf("status: exit %d\n%s", code, errOut.String())
	}
	for _, want := range []string{"app", "old", "removed", filepath.Join(logs, "a.log")} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status table lacks %q:\n%s", want, out.String())
		}
	}
}

// The progress total of a --once run is what is left to read: a file read before counts only
// with what was appended since.
func TestProgressTotalIsWhatIsLeftToRead(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o700); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(logs, "a.log")
	if err := os.WriteFile(log, []byte(strings.Repeat("0123456789\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "kinship.yaml")
	body := fmt.Sprintf("state_dir: %s\nflows:\n  - {name: app, paths: [%q], discard: {}}\n", filepath.Join(dir, "state"), logs+"/**/*.log")
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := toRead(cfg); got != 1100 {
		t.Errorf("before any run: %d bytes to read, want 1100", got)
	}
	var out, errOut strings.Builder
	if code := runMain([]string{"run", "--config", cfgPath, "--once"}, &out, &errOut); code != 0 {
		t.Fatalf("run --once: exit %d\n%s", code, errOut.String())
	}
	f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("more\n")
	_ = f.Close()
	if got := toRead(cfg); got != 5 {
		t.Errorf("after a run and 5 more bytes: %d bytes to read, want 5", got)
	}
}
