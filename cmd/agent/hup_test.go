package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/flow"
)

// buildAgent builds this command into a temporary directory.
func buildAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kinship")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// A SIGHUP that arrives while the agent starts (logrotate's postrotate does not know it is
// starting) must not end it: systemd's Restart=on-failure would not restart an agent that a
// SIGHUP ended. It becomes a reload once the flows run.
//
// The configuration file is a FIFO, so that the test knows the agent is inside main (its
// open of the file returns only once the agent opens it) without waiting for any time: the
// SIGHUP arrives while the configuration is being read. The reload then reads the FIFO again
// and gets a second flow, which proves the SIGHUP was not lost.
func TestHangupWhileStartingReloadsOnceStarted(t *testing.T) {
	bin := buildAgent(t)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o700); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(logs, "a.log")
	content := strings.Repeat("a line of the application\n", 500)
	if err := os.WriteFile(logFile, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "kinship.yaml")
	if err := syscall.Mkfifo(cfgPath, 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	flowYAML := func(names ...string) string {
		body := fmt.Sprintf("state_dir: %s\nflows:\n", state)
		for _, n := range names {
			body += fmt.Sprintf("  - {name: %s, paths: [%q], discard: {}}\n", n, logs+"/*.log")
		}
		return body
	}

	var stderr syncBuffer
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "AWS_EC2_METADATA_DISABLED=true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		// Unblock a writer still waiting for the agent to open the FIFO.
		if f, err := os.OpenFile(cfgPath, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			_ = f.Close()
		}
	})

	// feed writes body into the FIFO once the agent opens it; then calls during (the agent is
	// reading the configuration at that moment).
	feed := func(what, body string, during func()) {
		t.Helper()
		opened := make(chan error, 1)
		var f *os.File
		go func() {
			var err error
			f, err = os.OpenFile(cfgPath, os.O_WRONLY, 0)
			opened <- err
		}()
		select {
		case err := <-opened:
			if err != nil {
				t.Fatal(err)
			}
		case err := <-exited:
			t.Fatalf("%s: the agent exited (%v) before reading its configuration:\n%s", what, err, stderr.String())
		case <-time.After(60 * time.Second): // only stops a broken test from hanging
			t.Fatalf("%s: the agent never opened its configuration:\n%s", what, stderr.String())
		}
		if during != nil {
			during()
		}
		if _, err := f.WriteString(body); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	feed("start", flowYAML("a"), func() {
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	})
	deadline := time.Now().Add(60 * time.Second) // only stops a broken test from hanging
	waitLog := func(what string) {
		t.Helper()
		for !strings.Contains(stderr.String(), what) {
			select {
			case err := <-exited:
				t.Fatalf("the agent exited (%v):\n%s", err, stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log:\n%s", what, stderr.String())
			}
		}
	}
	// Past its first read of the FIFO (a writer opening it earlier would write into that read).
	waitLog("kinship starting")
	// The reload the SIGHUP asked for reads the configuration again.
	feed("reload", flowYAML("a", "b"), nil)
	waitLog("configuration reloaded")
	// Both flows ship the whole file (discard accepts everything): wait for their positions.
	for _, name := range []string{"a", "b"} {
		for {
			st := flow.ReadStatus(name, filepath.Join(state, "flows", name))
			if len(st.Files) == 1 && st.Files[0].Position == int64(len(content)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("flow %s never read the file: %+v\n%s", name, st, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no exit after SIGTERM:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), `added="[b]"`) && !strings.Contains(stderr.String(), "added=[b]") {
		t.Errorf("the reload did not add flow b:\n%s", stderr.String())
	}
}

// SIGHUP is caught as soon as the initialization order allows, right after os/signal and
// before the agent's other packages and the heavy ones (net/http, the AWS SDK, Prometheus)
// initialize: initialization takes milliseconds in which SIGHUP would otherwise end the agent
// (19 times in 20 for a SIGHUP sent 1 ms after the runtime installed its signal handlers,
// with SIGHUP caught at the start of main; 2 in 20 with earlyhup).
func TestHangupCaughtBeforeOtherPackagesInitialize(t *testing.T) {
	bin := buildAgent(t)
	cmd := exec.Command(bin, "version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var order []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "init" {
			order = append(order, f[1])
		}
	}
	const early = "github.com/kinship-agent/kinship/internal/earlyhup"
	at := slices.Index(order, early)
	if at < 1 || order[at-1] != "os/signal" {
		t.Fatalf("%s does not initialize right after os/signal:\n%s", early, out)
	}
	for _, p := range order[:at] {
		if strings.HasPrefix(p, "github.com/kinship-agent/") || p == "net/http" ||
			strings.HasPrefix(p, "github.com/aws/aws-sdk-go-v2/service/") || strings.HasPrefix(p, "github.com/prometheus/") {
			t.Errorf("%s initializes before SIGHUP is caught", p)
		}
	}
}
