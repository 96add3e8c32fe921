package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A file the agent cannot read (a rotation created it with the wrong owner) for longer than
// metrics.unhealthy_after turns /healthz to 503 naming the flow and the file, and back to 200
// once the file can be read. The agent runs as nobody when the test runs as root, since root
// reads any file whatever its mode.
func TestHealthzReportsAFileUnreadableForLong(t *testing.T) {
	bin := buildAgent(t)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(logs, "locked.log")
	if err := os.WriteFile(locked, []byte("a line the agent cannot read yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cfgPath := filepath.Join(dir, "kinship.yaml")
	body := fmt.Sprintf(`state_dir: %s
metrics: {listen: %q, unhealthy_after: 1s}
flows:
  - {name: app, paths: [%q], poll_interval: 100ms, discard: {}}
`, filepath.Join(dir, "state"), addr, logs+"/*.log")
	if err := os.WriteFile(cfgPath, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "AWS_EC2_METADATA_DISABLED=true")
	if os.Geteuid() == 0 {
		const nobody = 65534
		// The temporary directories are root's and 0700: let nobody through and own the rest.
		for _, d := range []string{filepath.Dir(dir), filepath.Dir(filepath.Dir(bin)), filepath.Dir(bin)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Chown(p, nobody, nobody)
		}); err != nil {
			t.Fatal(err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	health := func() (int, string) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitHealth := func(what string, ok func(code int, body string) bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second) // only stops a broken test from hanging
		for {
			code, body := health()
			if ok(code, body) {
				return
			}
			select {
			case err := <-exited:
				t.Fatalf("the agent exited (%v):\n%s", err, stderr.String())
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /healthz still %d %q\n%s", what, code, body, stderr.String())
			}
		}
	}
	waitHealth("unreadable for longer than unhealthy_after", func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.Contains(body, "flow app: cannot read "+locked+" since ") &&
			strings.Contains(body, "permission denied")
	})
	if err := os.Chmod(locked, 0o644); err != nil {
		t.Fatal(err)
	}
	waitHealth("readable again", func(code int, body string) bool { return code == http.StatusOK })
}
