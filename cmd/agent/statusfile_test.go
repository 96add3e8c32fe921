package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `kinship status --file` is what a logrotate script waits on: exit 1 until every line of
// the file is acknowledged, 0 after, whether or not an agent runs.
func TestStatusFileExitsZeroOnlyOnceShipped(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o700); err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(logs, "app.log")
	if err := os.WriteFile(app, []byte("one\ntwo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "kinship.yaml")
	body := fmt.Sprintf("state_dir: %s\nflows:\n  - {name: app, paths: [%q], discard: {}}\n",
		filepath.Join(dir, "state"), logs+"/*.log")
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	status := func(args ...string) (int, string) {
		var out, errOut strings.Builder
		code := runMain(append([]string{"status", "--config", cfgPath}, args...), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := status("--file", app); code != 1 || !strings.Contains(out, "not yet read") {
		t.Fatalf("before the agent ran: exit %d\n%s", code, out)
	}
	other := filepath.Join(dir, "other.txt")
	if err := os.WriteFile(other, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := status("--file", other); code != 1 || !strings.Contains(out, "no flow reads this file") {
		t.Fatalf("a file no flow reads: exit %d\n%s", code, out)
	}
	if code, out := status("--file", filepath.Join(logs, "missing.log")); code != 1 {
		t.Fatalf("a missing file: exit %d\n%s", code, out)
	}

	var errOut strings.Builder
	if code := runMain([]string{"run", "--config", cfgPath, "--once"}, &strings.Builder{}, &errOut); code != 0 {
		t.Fatalf("run --once: exit %d\n%s", code, errOut.String())
	}
	code, out := status("--file", app)
	if code != 0 || !strings.HasPrefix(out, "shipped: "+app) {
		t.Fatalf("after run --once: exit %d\n%s", code, out)
	}
	code, out = status("--file", app, "--json")
	var rep fileStatusReport
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || !rep.Shipped || len(rep.Flows) != 1 || rep.Flows[0].Flow != "app" {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}

	// A line without its newline yet: not shipped, even once read.
	fd, err := os.OpenFile(app, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fd.WriteString("thr")
	_ = fd.Close()
	if code, out := status("--file", app); code != 1 || !strings.Contains(out, "not yet read") {
		t.Fatalf("after a partial line was appended: exit %d\n%s", code, out)
	}
}
