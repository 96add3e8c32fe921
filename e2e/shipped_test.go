package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// statusFile runs `kinship status --config cfg --file path` and returns its exit code.
func statusFile(t *testing.T, cfg, path string) (int, string) {
	t.Helper()
	cmd := exec.Command(kinshipBin, "status", "--config", cfg, "--file", path)
	cmd.Env = agentEnv("http://127.0.0.1:1")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("kinship status --file: %v", err)
	}
	return 0, string(out)
}

// writeLines writes n numbered lines "<prefix> <i>" to path (appending).
func writeLines(t *testing.T, path, prefix string, n int) []string {
	t.Helper()
	fd, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	var lines []string
	var b bytes.Buffer
	for i := range n {
		l := fmt.Sprintf("%s %06d %s", prefix, i, strings.Repeat("x", 100))
		lines = append(lines, l)
		b.WriteString(l + "\n")
	}
	if _, err := fd.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	return lines
}

// missingFrom lists the lines the stream does not hold.
func missingFrom(t *testing.T, endpoint, stream string, want []string) []string {
	t.Helper()
	have := map[string]bool{}
	for _, l := range readStream(t, endpoint, stream).lines {
		have[string(l)] = true
	}
	var missing []string
	for _, l := range want {
		if !have[l] {
			missing = append(missing, l)
		}
	}
	return missing
}

// `kinship status --file` is what a logrotate script waits on: it exits 1 while any line of
// the file is not acknowledged by the stream, and 0 only once the stream holds every line.
func TestStatusFileExitsZeroOnceTheStreamHasEveryLine(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "shipped", 1)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(logs, "app.log")
	lines := writeLines(t, app, "a", 5000)
	cfg := writeConfig(t, dir, kinesisConfig(dir, endpoint, "shipped"))
	if code, out := statusFile(t, cfg, app); code != 1 || !strings.Contains(out, "not yet read") {
		t.Fatalf("before the agent ran: exit %d\n%s", code, out)
	}
	startAgent(t, endpoint, "run", "--config", cfg)
	sawOne := false
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, out := statusFile(t, cfg, app)
		if code == 0 {
			if !strings.HasPrefix(out, "shipped: ") {
				t.Fatalf("exit 0 with:\n%s", out)
			}
			break
		}
		if code != 1 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		sawOne = true
		if time.Now().After(deadline) {
			t.Fatalf("not shipped after 90s:\n%s", out)
		}
	}
	if !sawOne {
		t.Fatal("status --file never said not shipped while the agent shipped the file")
	}
	if missing := missingFrom(t, endpoint, "shipped", lines); len(missing) > 0 {
		t.Fatalf("status --file said shipped, the stream lacks %d lines (first %q)", len(missing), missing[0])
	}
	writeLines(t, app, "b", 1)
	if code, out := statusFile(t, cfg, app); code != 1 {
		t.Fatalf("after a new line: exit %d\n%s", code, out)
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// delete_after_shipped deletes a rotated file only once the stream holds every line of it;
// never the live file, and never a file another flow reads and cannot ship (its
// destination is down).
func TestDeleteAfterShippedWaitsForEveryFlow(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "del", 1)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	body := kinesisConfig(dir, endpoint, "del")
	body = strings.Replace(body, "    kinesis:\n", fmt.Sprintf(`    delete_after_shipped: ["%s/*.log.[0-9]"]
    close_inactive: 1s
    kinesis:
`, logs), 1)
	body += fmt.Sprintf(`  - name: down
    paths: ["%s/keep.log.[0-9]"]
    http:
      url: http://%s/
`, logs, closedPort(t))
	cfg := writeConfig(t, dir, body)
	app, keep := filepath.Join(logs, "app.log"), filepath.Join(logs, "keep.log")
	appLines := writeLines(t, app, "app", 3000)
	keepLines := writeLines(t, keep, "keep", 100)
	a := startAgent(t, endpoint, "run", "--config", cfg)
	for deadline := time.Now().Add(90 * time.Second); len(missingFrom(t, endpoint, "del", append(appLines, keepLines...))) > 0; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first lines were not shipped within 90s")
		}
	}
	// Rotate (logrotate's create): the agent reads the renamed files to their end.
	for _, p := range []string{app, keep} {
		if err := os.Rename(p, p+".1"); err != nil {
			t.Fatal(err)
		}
	}
	appLines = append(appLines, writeLines(t, app+".1", "late", 500)...) // written after the rename, before the reopen
	writeLines(t, app, "new", 10)
	writeLines(t, keep, "newkeep", 10)

	deadline := time.Now().Add(90 * time.Second)
	for ; ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(app + ".1"); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("app.log.1 was not deleted within 90s; stderr:\n%s", a.stderr.String())
		}
	}
	if missing := missingFrom(t, endpoint, "del", appLines); len(missing) > 0 {
		t.Fatalf("app.log.1 deleted, the stream lacks %d of its lines (first %q)", len(missing), missing[0])
	}
	// The other files stay: give the agent several more sweeps to get them wrong.
	time.Sleep(3 * time.Second)
	for _, p := range []string{app, keep, keep + ".1"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v (deleted?)", filepath.Base(p), err)
		}
	}
	if code, out := statusFile(t, cfg, keep+".1"); code != 1 || !strings.Contains(out, "flow down") {
		t.Errorf("status --file keep.log.1: exit %d, want 1 naming flow down\n%s", code, out)
	}
	if n := strings.Count(a.stderr.String(), "deleted a shipped file"); n != 1 {
		t.Errorf("%d deletions logged, want 1; stderr:\n%s", n, a.stderr.String())
	}
}
