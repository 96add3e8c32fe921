// Package e2e runs the kinship binary as an operator would, against a real Kinesis API
// (kinesalite on loopback), and checks the delivery contract: every line arrives, nothing
// that was not written appears, and duplicates only where a crash forced them.
package e2e

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

var kinshipBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kinship-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kinshipBin = filepath.Join(dir, "kinship")
	build := exec.Command("go", "build", "-o", kinshipBin, "../cmd/agent")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building kinship:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// agent is one kinship process.
type agent struct {
	cmd    *exec.Cmd
	stderr *syncWriter // read while the agent runs: only through its lock
	exited chan struct{}
	err    error // valid once exited is closed
}

func agentEnv(endpoint string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	return append(env, kinesalitetest.Env(endpoint)...)
}

func startAgent(t *testing.T, endpoint string, args ...string) *agent {
	t.Helper()
	return startAgentWith(t, agentEnv(endpoint), nil, args...)
}

// startAgentWith starts kinship with the environment env, as the user cred (nil: this one),
// and kills it when the test ends, logging its stderr if the test failed.
func startAgentWith(t *testing.T, env []string, cred *syscall.Credential, args ...string) *agent {
	t.Helper()
	a := &agent{stderr: &syncWriter{w: &bytes.Buffer{}}, exited: make(chan struct{})}
	a.cmd = exec.Command(kinshipBin, args...)
	a.cmd.Env = env
	a.cmd.Stderr = a.stderr
	if cred != nil {
		a.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start kinship: %v", err)
	}
	go func() { a.err = a.cmd.Wait(); close(a.exited) }()
	t.Cleanup(func() {
		_ = a.cmd.Process.Kill()
		<-a.exited
		if t.Failed() {
			t.Logf("kinship %v stderr:\n%s", args, a.stderr.String())
		}
	})
	return a
}

func (a *agent) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-a.exited:
		return a.err
	case <-time.After(timeout):
		t.Fatalf("kinship did not exit within %v; stderr:\n%s", timeout, a.stderr.String())
		return nil
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// String is what was written so far; safe while the writer is in use.
func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "kinship.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// streamContent is what a stream holds, de-aggregated.
// drainThenStop waits (up to 2 minutes: the shipper backs off up to 10 s, on a loaded
// machine) until the running agent has shipped every line w wrote to stream, stops it with
// SIGTERM, and checks what arrived: every line at least once. It returns the stream and the
// duplicate count.
func drainThenStop(t *testing.T, a *agent, endpoint, stream string, w *writer) (streamContent, int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for len(readStream(t, endpoint, stream).lines) < w.total() && time.Now().Before(deadline) {
		time.Sleep(time.Second)
	}
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.wait(t, 15*time.Second); err != nil {
		t.Fatalf("kinship after SIGTERM: %v", err)
	}
	sc := readStream(t, endpoint, stream)
	return sc, w.check(t, sc.lines) // check names the missing lines, if any
}

type streamContent struct {
	lines      [][]byte
	records    int
	dupRecords int // Kinesis records whose exact bytes arrived more than once
}

func readStream(t *testing.T, endpoint, stream string) streamContent {
	t.Helper()
	var sc streamContent
	seen := map[[16]byte]bool{}
	for _, r := range kinesalitetest.ReadAll(t, endpoint, stream) {
		sum := md5.Sum(append([]byte(aws.ToString(r.PartitionKey)+"\x00"), r.Data...))
		if seen[sum] {
			sc.dupRecords++
		}
		seen[sum] = true
		sc.records++
		urs, _, err := aggregator.Deaggregate(r.Data, aws.ToString(r.PartitionKey))
		if err != nil {
			t.Fatalf("deaggregate: %v", err)
		}
		for _, u := range urs {
			sc.lines = append(sc.lines, u.Data)
		}
	}
	return sc
}

// writer appends numbered lines "f<file> <n> <padding>" to several files.
type writer struct {
	mu    sync.Mutex // a background goroutine appends while the test reads total
	files []*os.File
	next  []int
}

func newWriter(t *testing.T, dir string, n int) *writer {
	t.Helper()
	w := &writer{next: make([]int, n)}
	for i := range n {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("app%d.log", i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		w.files = append(w.files, f)
	}
	return w
}

const padding = "GET /api/v1/items?page=2 HTTP/1.1 200 1532 0.012 Mozilla/5.0"

// write appends count lines spread over the files.
func (w *writer) write(t *testing.T, count int) {
	t.Helper()
	if err := w.append(count); err != nil {
		t.Fatal(err)
	}
}

// append is write for goroutines other than the test's, which must not call t.Fatal.
func (w *writer) append(count int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var buf [][]byte = make([][]byte, len(w.files))
	for i := range count {
		f := i % len(w.files)
		buf[f] = fmt.Appendf(buf[f], "f%d %07d %s\n", f, w.next[f], padding)
		w.next[f]++
	}
	for i, f := range w.files {
		if _, err := f.Write(buf[i]); err != nil {
			return fmt.Errorf("writer: %w", err)
		}
	}
	return nil
}

func (w *writer) total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, x := range w.next {
		n += x
	}
	return n
}

// check asserts that lines are exactly the written ones, each at least once, and returns how
// many arrived more than once.
func (w *writer) check(t *testing.T, lines [][]byte) (dups int) {
	t.Helper()
	seen := make([][]int, len(w.files))
	for i := range seen {
		seen[i] = make([]int, w.next[i])
	}
	bad := 0
	for _, l := range lines {
		f, n, ok := parseLine(l)
		if !ok || f >= len(seen) || n >= len(seen[f]) {
			if bad < 5 {
				t.Errorf("line that was never written: %q", l)
			}
			bad++
			continue
		}
		seen[f][n]++
	}
	missing := 0
	for f := range seen {
		for n, c := range seen[f] {
			switch {
			case c == 0:
				if missing < 5 {
					t.Errorf("line f%d %07d never arrived", f, n)
				}
				missing++
			case c > 1:
				dups += c - 1
			}
		}
	}
	if missing > 0 || bad > 0 {
		t.Fatalf("%d lines missing, %d unknown lines, of %d written", missing, bad, w.total())
	}
	return dups
}

func parseLine(l []byte) (file, n int, ok bool) {
	s := string(l)
	if !strings.HasPrefix(s, "f") || !strings.HasSuffix(s, padding) {
		return 0, 0, false
	}
	fields := strings.Fields(s)
	if len(fields) < 2 {
		return 0, 0, false
	}
	f, err1 := strconv.Atoi(fields[0][1:])
	x, err2 := strconv.Atoi(fields[1])
	return f, x, err1 == nil && err2 == nil
}

// kinesisConfig is a one-flow config reading dir/logs/*.log into stream; kinesisExtra are
// more keys of the flow's kinesis section ("partition_key: x").
func kinesisConfig(dir, endpoint, stream string, kinesisExtra ...string) string {
	extra := ""
	for _, e := range kinesisExtra {
		extra += "      " + e + "\n"
	}
	return fmt.Sprintf(`state_dir: %s/state
aws:
  region: us-east-1
  endpoint: %s
flows:
  - name: app
    paths: ["%s/logs/*.log"]
    kinesis:
      stream: %s
      max_in_flight: 4
      # kinesalite answers HTTP 413 above ~6 MB of JSON (5 MiB of data is ~7 MB in base64).
      max_request_bytes: 3MiB
%s    batch:
      max_age: 200ms
      max_bytes: 256KiB
`, dir, endpoint, dir, stream, extra)
}

// TestKillNineTwiceLosesNothing is the delivery contract under crashes: 100,000 numbered
// lines across 3 files, the agent killed with SIGKILL twice while they are written, then
// restarted; every line must be in the stream, and duplicates only from records in flight.
func TestKillNineTwiceLosesNothing(t *testing.T) { eachWriteMode(t, testKillNineTwiceLosesNothing) }

func testKillNineTwiceLosesNothing(t *testing.T, mode string) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "e2e", 2)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Through the proxy: kinesalite exits when a client dies in the middle of a request,
	// which a kill -9 can do; the proxy forwards only complete requests.
	cfg := writeModeConfig(t, dir, mode, kinesisConfig(dir, crashProxy(t, endpoint), "e2e"))
	w := newWriter(t, filepath.Join(dir, "logs"), 3)

	const total, chunks = 100_000, 50
	kills := 0
	a := startAgent(t, endpoint, "run", "--config", cfg)
	for i := range chunks {
		w.write(t, total/chunks)
		time.Sleep(40 * time.Millisecond)
		if i == chunks/3 || i == 2*chunks/3 {
			if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = a.wait(t, 10*time.Second)
			kills++
			a = startAgent(t, endpoint, "run", "--config", cfg)
		}
	}
	// Let the running agent take some of the tail, then stop it gracefully, then the
	// final --once run reads every file to its end and ships everything left.
	time.Sleep(500 * time.Millisecond)
	a.waitLog(t, "kinship starting") // the SIGTERM handler is installed (see TestGracefulStopNoDuplicates)
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.wait(t, 10*time.Second); err != nil {
		t.Fatalf("kinship after SIGTERM: %v\n%s", err, a.stderr)
	}
	final := startAgent(t, endpoint, "run", "--config", cfg, "--once")
	if err := final.wait(t, 2*time.Minute); err != nil {
		t.Fatalf("kinship run --once: %v\n%s", err, final.stderr)
	}

	sc := readStream(t, endpoint, "e2e")
	dups := w.check(t, sc.lines)
	t.Logf("%d lines written, %d arrived in %d Kinesis records; %d duplicate lines (%.3f%%) in %d duplicate records after %d kill -9",
		w.total(), len(sc.lines), sc.records, dups, 100*float64(dups)/float64(w.total()), sc.dupRecords, kills)
	// A duplicate can only be a record the stream accepted whose ack had not reached the
	// disk: at most max_in_flight requests of at most 500 records each, per kill.
	if maxDup := kills * 4 * 500; sc.dupRecords > maxDup {
		t.Errorf("%d duplicate records, more than the %d that can be in flight across %d kills", sc.dupRecords, maxDup, kills)
	}
	// With spool.write: backlog a record in flight at the kill was never written: its lines
	// are read again and packed anew, so duplicates are lines, not records.
	if dupLines := dups; mode == "always" && dupLines > 0 && sc.dupRecords == 0 {
		t.Errorf("%d duplicate lines but no duplicate record: a line was packed twice, not resent", dupLines)
	}
}

// TestGracefulStopNoDuplicates: SIGTERM is not a crash; stopping and starting again must
// neither lose nor repeat a line, and the agent must stop promptly.
func TestGracefulStopNoDuplicates(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "graceful", 1)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, kinesisConfig(dir, endpoint, "graceful"))
	w := newWriter(t, filepath.Join(dir, "logs"), 2)
	for range 3 {
		a := startAgent(t, endpoint, "run", "--config", cfg)
		// A SIGTERM that arrives before main installed its handler kills the process with the
		// default action ("signal: terminated"): on a loaded machine the binary's start can
		// take longer than the writes below. Any log line means the handler is there.
		a.waitLog(t, "kinship starting")
		for range 10 {
			w.write(t, 1000)
			time.Sleep(30 * time.Millisecond)
		}
		if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := a.wait(t, 15*time.Second); err != nil {
			t.Fatalf("kinship after SIGTERM: %v", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("kinship took %v to stop after SIGTERM; the contract is 5s", took)
		}
	}
	final := startAgent(t, endpoint, "run", "--config", cfg, "--once")
	if err := final.wait(t, time.Minute); err != nil {
		t.Fatalf("kinship run --once: %v", err)
	}
	sc := readStream(t, endpoint, "graceful")
	if dups := w.check(t, sc.lines); dups != 0 {
		t.Errorf("%d duplicate lines after graceful restarts; want none", dups)
	}

	// kinship consume prints exactly what the stream holds.
	consume := exec.Command(kinshipBin, "consume", "--stream", "graceful", "--endpoint", endpoint)
	consume.Env = agentEnv(endpoint)
	var stderr bytes.Buffer
	consume.Stderr = &stderr
	out, err := consume.Output()
	if err != nil {
		t.Fatalf("kinship consume: %v\n%s", err, stderr.String())
	}
	consumed := bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n"))
	if len(consumed) != len(sc.lines) {
		t.Fatalf("kinship consume printed %d lines, the stream holds %d", len(consumed), len(sc.lines))
	}
}

// TestOnceDiscard: `run --once` with the discard destination reads a file to its end and
// exits 0, leaving the file's position at its end.
func TestOnceDiscard(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for i := range 50_000 {
		fmt.Fprintf(&b, "line %d %s\n", i, padding)
	}
	b.WriteString("last line without newline")
	if err := os.WriteFile(filepath.Join(logs, "big.log"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf(`state_dir: %s/state
metrics:
  listen: 127.0.0.1:0
flows:
  - name: dry
    paths: ["%s/*.log"]
    discard: {}
`, dir, logs))
	a := startAgent(t, "http://127.0.0.1:1", "run", "--config", cfg, "--once")
	if err := a.wait(t, time.Minute); err != nil {
		t.Fatalf("kinship run --once: %v\n%s", err, a.stderr)
	}
	pos, err := os.ReadFile(filepath.Join(dir, "state", "flows", "dry", "positions.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`"offset":%d`, b.Len())
	if !bytes.Contains(pos, []byte(want)) {
		t.Errorf("positions after --once do not end at the file's end (%s):\n%s", want, pos)
	}
}
