package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// startAgentAs is startAgent with the process running as another user (nil: this one).
func startAgentAs(t *testing.T, endpoint string, cred *syscall.Credential, args ...string) *agent {
	t.Helper()
	return startAgentWith(t, agentEnv(endpoint), cred, args...)
}

// waitStream waits (up to 2 minutes) until stream holds at least n lines.
func waitStream(t *testing.T, endpoint, stream string, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for len(readStream(t, endpoint, stream).lines) < n {
		if time.Now().After(deadline) {
			t.Fatalf("stream %s: %d lines after 2 minutes, want %d", stream, len(readStream(t, endpoint, stream).lines), n)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestUnlistableLogDirectoryNoDuplicates: the logs directory cannot be listed for longer than
// the retire delay (a package upgrade's chmod 711, an ACL change, ESTALE on NFS) while the
// application goes on writing. Nothing is lost, and nothing is shipped twice: not when the
// directory can be listed again, and not after a restart (positions.json still knows the
// files).
//
// As root the agent runs as nobody, for whom mode 0711 takes the listing away; otherwise as
// this user, with mode 0311.
func TestUnlistableLogDirectoryNoDuplicates(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "unlistable", 1)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	state := filepath.Join(dir, "state")
	for _, d := range []string{logs, state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var cred *syscall.Credential
	open, shut := os.FileMode(0o755), os.FileMode(0o311)
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		shut = 0o711
		for _, d := range []string{filepath.Dir(dir), dir, filepath.Dir(kinshipBin)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(state, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	cfg := writeConfig(t, dir, fmt.Sprintf(`state_dir: %s
aws:
  region: us-east-1
  endpoint: %s
flows:
  - name: app
    paths: ["%s/*.log"]
    poll_interval: 1s
    kinesis:
      stream: unlistable
      max_request_bytes: 3MiB
    batch:
      max_age: 200ms
`, state, endpoint, logs))
	if err := os.Chmod(cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, logs, 2)
	a := startAgentAs(t, endpoint, cred, "run", "--config", cfg)
	w.write(t, 2000)
	waitStream(t, endpoint, "unlistable", 2000)

	if err := os.Chmod(logs, shut); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(logs, open) }) // a failure midway must not leave t.TempDir unremovable
	// The directory changes while it cannot be listed (the next poll lists it, and fails),
	// the application writes, then its files stay idle for longer than the 5 s retire delay.
	if err := os.WriteFile(filepath.Join(logs, "unrelated.txt"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.write(t, 300)
	time.Sleep(9 * time.Second)
	if err := os.Chmod(logs, open); err != nil {
		t.Fatal(err)
	}
	w.write(t, 500)
	waitStream(t, endpoint, "unlistable", w.total())
	time.Sleep(3 * time.Second) // polls that list the directory again: a re-read would show now
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.wait(t, 15*time.Second); err != nil {
		t.Fatalf("kinship after SIGTERM: %v", err)
	}

	a = startAgentAs(t, endpoint, cred, "run", "--config", cfg)
	a.waitLog(t, "kinship starting")
	w.write(t, 500)
	sc, dups := drainThenStop(t, a, endpoint, "unlistable", w)
	if dups != 0 {
		t.Fatalf("%d lines shipped twice (of %d in the stream)", dups, len(sc.lines))
	}
}

// TestStateDirUnderAPatternIsNotShipped: state_dir lies under a flow's pattern
// (state_dir: /var/log/kinship with /var/log/**/*). The agent ships the application's lines
// only: not its positions.json (rewritten every second), not its spool.
func TestStateDirUnderAPatternIsNotShipped(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "ownstate", 1)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf(`state_dir: %s/kinship
aws:
  region: us-east-1
  endpoint: %s
flows:
  - name: app
    paths: ["%s/**/*"]
    poll_interval: 1s
    kinesis:
      stream: ownstate
      max_request_bytes: 3MiB
    batch:
      max_age: 200ms
`, logs, endpoint, logs))
	w := newWriter(t, logs, 2)
	a := startAgent(t, endpoint, "run", "--config", cfg)
	for range 6 { // several checkpoints: positions.json rewritten, spool segments written
		w.write(t, 500)
		time.Sleep(time.Second)
	}
	if _, err := os.Stat(filepath.Join(logs, "kinship", "flows", "app", "positions.json")); err != nil {
		t.Fatalf("the state is not under the pattern as the test means it to be: %v", err)
	}
	sc, _ := drainThenStop(t, a, endpoint, "ownstate", w) // fails on any line the app did not write
	if len(sc.lines) == 0 {
		t.Fatal("nothing shipped")
	}
}
