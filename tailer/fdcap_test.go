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

// 300 files and a limit of 128 open files (a container, a LimitNOFILE drop-in), read by two
// flows' Tailers sharing one budget: every line of every file arrives exactly once, also
// lines appended after every file was read once, and the descriptors never run out (no
// "too many open files" at all, where each Tailer taking the whole limit for itself would
// hit it). The limit is lowered in a child process (the test binary, run again) so that the
// other tests keep theirs.
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
	const flows, files, lines, appended = 2, 150, 20, 5
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 128, Max: 128}); err != nil {
		t.Fatal(err)
	}
	budget := NewOpenFiles(0)
	h := &recordingHandler{}
	var paths [flows][]string
	var sinks [flows]*countingSink
	for i := range flows {
		dir := t.TempDir()
		paths[i] = makeFiles(t, dir, files, lines)
		sinks[i] = &countingSink{byPath: map[string][]string{}}
		tl, err := New(Options{Paths: []string{filepath.Join(dir, "*.log")}, PollInterval: 200 * time.Millisecond,
			Logger: slog.New(h), OpenFiles: budget}, sinks[i])
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
	}
	total := func() int { return sinks[0].count() + sinks[1].count() }
	waitLong(t, "every line", func() bool { return total() == flows*files*lines })
	for i := range flows {
		for j, p := range paths[i] {
			var data []byte
			for k := lines; k < lines+appended; k++ {
				data = fmt.Appendf(data, "%d-%d\n", j, k)
			}
			appendFile(t, p, string(data))
		}
	}
	waitLong(t, "appended lines", func() bool { return total() == flows*files*(lines+appended) })
	time.Sleep(time.Second) // several polls and retire delays: a second reading would show now
	for i := range flows {
		s := sinks[i]
		s.mu.Lock()
		for j, p := range paths[i] {
			got := s.byPath[p]
			if len(got) != lines+appended {
				s.mu.Unlock()
				t.Fatalf("%s: %d lines, want %d", p, len(got), lines+appended)
			}
			for k, l := range got {
				if want := fmt.Sprintf("%d-%d", j, k); l != want {
					s.mu.Unlock()
					t.Fatalf("%s: line %d = %q, want %q", p, k, l, want)
				}
			}
		}
		s.mu.Unlock()
	}
	if n := h.count("too many open files"); n != 0 {
		t.Fatalf("the descriptors ran out: %q", h.msgs)
	}
	if used, max := budget.Used(), budget.Max(); used > max+flows {
		t.Fatalf("%d descriptors held, budget %d", used, max)
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
