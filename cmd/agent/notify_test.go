package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// notifySocket listens where systemd would and returns what the agent sends, one datagram
// per message.
func notifySocket(t *testing.T) (path string, recv func() string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	buf := make([]byte, 4096)
	return path, func() string {
		t.Helper()
		// Generous: the deadline only stops a broken test from hanging, it asserts no timing.
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no sd_notify message: %v", err)
		}
		return string(buf[:n])
	}
}

// The watchdog is petted only while the flows are alive. To see the order of petting and
// liveness without timing, the fake liveness writes a marker into the same socket each time
// it says "dead": no WATCHDOG=1 may follow a marker until it says "alive" again.
func TestNotifyReadyWatchdogOnlyWhileAliveAndStopping(t *testing.T) {
	path, recv := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "20000") // pet every 10 ms
	t.Setenv("WATCHDOG_PID", "")
	mark, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer mark.Close()
	var alive atomic.Bool
	var asked atomic.Int64
	isAlive := func(time.Time) bool {
		asked.Add(1)
		if alive.Load() {
			return true
		}
		if _, err := mark.Write([]byte("MARK")); err != nil {
			t.Error(err)
		}
		return false
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := notifySystemd(ctx, slog.New(slog.DiscardHandler), isAlive)
	defer stop()

	// Not ready while the flows are not running yet.
	for range 3 {
		if m := recv(); m != "MARK" {
			t.Fatalf("got %q before the flows were alive", m)
		}
	}
	alive.Store(true)
	for {
		m := recv()
		if m == "READY=1" {
			break
		}
		if m != "MARK" {
			t.Fatalf("got %q, want READY=1", m)
		}
	}
	if m := recv(); m != "WATCHDOG=1" {
		t.Fatalf("after READY=1 got %q, want WATCHDOG=1", m)
	}

	// A flow dies: once the notifier has seen that, petting stops.
	alive.Store(false)
	for recv() != "MARK" {
	}
	for range 3 {
		if m := recv(); m != "MARK" {
			t.Fatalf("got %q while a flow was not alive", m)
		}
	}
	// It comes back: petting resumes.
	alive.Store(true)
	for {
		m := recv()
		if m == "WATCHDOG=1" {
			break
		}
		if m != "MARK" {
			t.Fatalf("got %q, want WATCHDOG=1", m)
		}
	}

	cancel() // SIGTERM
	for {
		m := recv()
		if m == "STOPPING=1" {
			break
		}
		if m != "WATCHDOG=1" {
			t.Fatalf("got %q, want STOPPING=1", m)
		}
	}
}

// kinship run under Type=notify: READY=1 once its flows run, STOPPING=1 on SIGTERM.
func TestRunNotifiesSystemd(t *testing.T) {
	_, recv := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kinship.yaml")
	yaml := "state_dir: " + filepath.Join(dir, "state") + "\nflows:\n  - name: app\n    paths: [\"" +
		filepath.Join(dir, "logs", "*.log") + "\"]\n    discard: {}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmdRun(ctx, []string{"--config", cfg}, io.Discard, nil) }()
	if m := recv(); m != "READY=1" {
		t.Fatalf("first message %q, want READY=1", m)
	}
	cancel()
	if m := recv(); m != "STOPPING=1" {
		t.Fatalf("after stop got %q, want STOPPING=1", m)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
