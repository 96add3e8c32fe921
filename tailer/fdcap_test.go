package tailer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv marks the re-executed test binary that runs under a lowered descriptor limit.
const childEnv = "KINSHIP_TAILER_NOFILE_CHILD"

// 300 files and a limit of 128 open files (a container, a LimitNOFILE drop-in): every line
// of every file arrives exactly once, also lines appended after every file was read once, and
// the shortage is logged once at most rather than every second. The limit is lowered in a
// child process (the test binary, run again) so that the other tests keep theirs.
func TestMoreFilesThanDescriptors(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMoreFilesThanDescriptors$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("child under a limit of 128 open files: %v\n%s", err, out)
		}
		return
	}
	const files, lines, appended = 300, 20, 5
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 128, Max: 128}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths := makeFiles(t, dir, files, lines)
	h := &recordingHandler{}
	sink := &countingSink{byPath: map[string][]string{}}
	tl, err := New(Options{Paths: []string{filepath.Join(dir, "*.log")}, PollInterval: 200 * time.Millisecond,
		Logger: slog.New(h)}, sink)
	if err != nil {
		t.Fatal(err)
	}
	fast(tl)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitLong(t, "every line", func() bool { return sink.count() == files*lines })
	for i, p := range paths {
		var data []byte
		for j := lines; j < lines+appended; j++ {
			data = fmt.Appendf(data, "%d-%d\n", i, j)
		}
		appendFile(t, p, string(data))
	}
	waitLong(t, "appended lines", func() bool { return sink.count() == files*(lines+appended) })
	time.Sleep(time.Second) // several polls and retire delays: a second reading would show now
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.n != files*(lines+appended) {
		t.Fatalf("%d lines, want %d", sink.n, files*(lines+appended))
	}
	for i, p := range paths {
		got := sink.byPath[p]
		if len(got) != lines+appended {
			t.Fatalf("%s: %d lines, want %d", p, len(got), lines+appended)
		}
		for j, l := range got {
			if want := fmt.Sprintf("%d-%d", i, j); l != want {
				t.Fatalf("%s: line %d = %q, want %q", p, j, l, want)
			}
		}
	}
	if n := h.count("too many open files"); n > 1 {
		t.Fatalf("descriptor shortage logged %d times: %q", n, h.msgs)
	}
}

func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
