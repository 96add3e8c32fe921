package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// rotationMode is one way logrotate (the real one) rotates the files.
type rotationMode struct {
	name       string
	directives string        // logrotate directives besides rotate/size/missingok
	interval   time.Duration // between two rotations
	// lateReopen > 0: the application reopens its files only this long after each logrotate
	// run (a slow reaction to postrotate's signal), writing into the renamed file meanwhile.
	// 0: it reopens as soon as it sees a different inode at its path.
	lateReopen time.Duration
	// copytruncate: the files keep their inode; lines written between logrotate's copy and
	// its truncate are in neither file, which logrotate(8) documents as a possible loss.
	copytruncate bool
	olddir       bool
}

// logrotateBin finds the real logrotate. It is often in /usr/sbin, which is not on a normal
// user's PATH. Missing, the test fails: CI (.ci/run) installs it.
func logrotateBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("logrotate"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/logrotate", "/sbin/logrotate"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("logrotate is not installed: apt-get install -y --no-install-recommends logrotate (.ci/run does)")
	return ""
}

// TestRotationTorture runs the real logrotate in each of its modes, several times, while
// three files are appended to at a high rate, and checks that the stream holds every line,
// in order per file, without duplicates (the agent is stopped gracefully, never killed).
//
// The agent reads dir/logs/*.log. None of the rotated names match: app0.log.1 (create,
// copytruncate's copy, delaycompress), app0.log-<epoch> (dateext), app0.log.2.gz, and
// logs/old/app0.log.1 (olddir, a directory the pattern cannot descend into). So rotated files
// are read only by following their descriptor after they left the path, never as new files.
func TestRotationTorture(t *testing.T) {
	lr := logrotateBin(t)
	const step = 600 * time.Millisecond
	modes := []rotationMode{
		{name: "create", directives: "create", interval: step},
		{name: "copytruncate", directives: "copytruncate", interval: step, copytruncate: true},
		// The date suffix must differ between rotations, so rotations are a second apart.
		{name: "dateext", directives: "create\n  dateext\n  dateformat -%s", interval: 1100 * time.Millisecond},
		{name: "compress", directives: "create\n  compress\n  delaycompress", interval: step},
		{name: "olddir", directives: "create\n  olddir old", interval: step, olddir: true},
		{name: "late-reopen", directives: "create", interval: step, lateReopen: 300 * time.Millisecond},
		// Rotations faster than the agent's rescans: a file can be created, written and
		// renamed away between two looks at the directory.
		{name: "create-burst", directives: "create", interval: 30 * time.Millisecond},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { runRotation(t, lr, m) })
	}
}

const (
	rotations     = 5
	rotationFiles = 3
	rotationLines = 20_000 // per mode, about
)

func runRotation(t *testing.T, logrotate string, m rotationMode) {
	endpoint := kinesalitetest.Start(t)
	// One shard and a fixed partition key: the stream's order is the order the agent put.
	kinesalitetest.CreateStream(t, endpoint, "rot", 1)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	if m.olddir {
		if err := os.MkdirAll(filepath.Join(logs, "old"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "logrotate.conf")
	// Relative olddir is relative to the log's directory. logrotate run as root refuses a
	// config writable by others.
	body := fmt.Sprintf("%s/app*.log {\n  rotate 10\n  size 0\n  missingok\n  %s\n}\n", logs, m.directives)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "logrotate.state")
	// One request on the wire at a time: concurrent PutRecords calls land in the shard in any
	// order (the shipper promises at-least-once, not order across requests), and the order
	// of a file's lines in the stream is part of what is checked here.
	kc := kinesisConfig(dir, endpoint, "rot", "partition_key: rotation")
	serial := strings.Replace(kc, "max_in_flight: 4", "max_in_flight: 1", 1)
	if serial == kc {
		t.Fatal("kinesisConfig no longer sets max_in_flight: 4; update this test")
	}
	cfg := writeConfig(t, dir, serial)

	w := &rotWriter{writer: newWriter(t, logs, rotationFiles), gens: make([][]int, rotationFiles)}
	for i := range w.gens {
		w.gens[i] = []int{0}
	}
	a := startAgent(t, endpoint, "run", "--config", cfg, "--log-level", "debug")
	// Rotations start once the agent follows the files: a file renamed away before the agent
	// ever saw it at its path is not one it can know about (see the report on startup races).
	if err := w.append(rotationFiles); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); countPresent(readStream(t, endpoint, "rot").lines, w.next) < rotationFiles; {
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not ship the first lines within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The writer keeps to a rate that spreads rotationLines over the run.
	// (A burst's run takes longer than its intervals: logrotate itself takes a while.)
	perSecond := float64(rotationLines) / (time.Duration(rotations+1) * max(m.interval, 400*time.Millisecond)).Seconds()
	stop, rotated := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- w.run(stop, rotated, perSecond, m.lateReopen) }()
	var stopOnce sync.Once
	var werr error
	stopWriter := func() { stopOnce.Do(func() { close(stop); werr = <-done }) }
	t.Cleanup(stopWriter)

	for i := range rotations {
		time.Sleep(m.interval)
		out, err := exec.Command(logrotate, "-f", "-s", state, conf).CombinedOutput()
		if err != nil {
			t.Fatalf("logrotate (rotation %d): %v\n%s", i+1, err, out)
		}
		if m.lateReopen > 0 {
			rotated <- struct{}{}
		}
	}
	time.Sleep(m.interval)
	stopWriter()
	if werr != nil {
		t.Fatal(werr)
	}

	onDisk, rotatedFiles := linesOnDisk(t, logs, rotationFiles)
	// Not vacuous: logrotate did rotate every file each time, and the writer followed.
	if rotatedFiles < rotations*rotationFiles {
		t.Errorf("%d rotated files on disk after %d rotations of %d files", rotatedFiles, rotations, rotationFiles)
	}
	reopens := 0
	for _, g := range w.gens {
		reopens += len(g) - 1
	}
	if !m.copytruncate && reopens == 0 {
		t.Errorf("the writer never reopened a file: no rotation was seen")
	}
	// Wait for what can arrive (everything but, with copytruncate, lines in neither file) to
	// be in the stream before stopping the agent, so that the stop does not cut a rotated
	// file short. A deadline, not an assertion: the final check below says what is missing.
	need := 0
	for f := range rotationFiles {
		for n := range w.next[f] {
			if !m.copytruncate || (n < len(onDisk[f]) && onDisk[f][n] != nowhere) {
				need++
			}
		}
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if countPresent(readStream(t, endpoint, "rot").lines, w.next) >= need {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.wait(t, 15*time.Second); err != nil {
		t.Fatalf("kinship after SIGTERM: %v\n%s", err, a.stderr)
	}
	final := startAgent(t, endpoint, "run", "--config", cfg, "--once")
	if err := final.wait(t, time.Minute); err != nil {
		t.Fatalf("kinship run --once: %v\n%s", err, final.stderr)
	}

	sc := readStream(t, endpoint, "rot")
	r := w.verify(t, sc.lines, onDisk, m.copytruncate)
	t.Logf("%s: %d lines written to %d files over %d rotations (%d reopens); %d arrived in %d records; %d duplicates; "+
		"copytruncate losses: %d lines in neither file, %d only in the copy, in %d runs, %d torn; "+
		"%d lines of a newer file shipped before the end of the file it replaced",
		m.name, w.total(), rotationFiles, rotations, reopens, len(sc.lines), sc.records, r.dups,
		r.lostWindow, r.lostInCopy, r.lostRuns, r.torn, r.crossOrder)
	if r.dups != 0 {
		t.Errorf("%d duplicate lines; want none: the agent was never killed", r.dups)
	}
}

// rotWriter is an application writing to its log files while they are rotated.
type rotWriter struct {
	*writer
	gens [][]int // per file: the first line number written to each file opened at the path
}

// run appends lines at perSecond, every millisecond, until stop. With late == 0 it reopens a file as
// soon as its path holds a different inode (a new file created by logrotate); otherwise it
// reopens every file late after each receive on rotated, and writes to the old ones meanwhile.
func (w *rotWriter) run(stop, rotated <-chan struct{}, perSecond float64, late time.Duration) error {
	defer func() {
		for _, f := range w.files {
			_ = f.Close()
		}
	}()
	var reopenAt time.Time
	start, written := time.Now(), 0
	for {
		select {
		case <-stop:
			return nil
		case <-rotated:
			reopenAt = time.Now().Add(late)
		default:
		}
		batch := int(perSecond*time.Since(start).Seconds()) - written
		if err := w.append(batch); err != nil {
			return err
		}
		written += batch
		for i, f := range w.files {
			if late > 0 {
				if reopenAt.IsZero() || time.Now().Before(reopenAt) {
					break
				}
			} else {
				// Missing path: logrotate renamed it and has not created the new one yet;
				// keep writing to the old one, as an application would.
				atPath, err := os.Stat(f.Name())
				if err != nil {
					continue
				}
				open, err := f.Stat()
				if err != nil {
					return fmt.Errorf("writer: %w", err)
				}
				if os.SameFile(atPath, open) {
					continue
				}
			}
			nf, err := os.OpenFile(f.Name(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return fmt.Errorf("writer: reopen: %w", err)
			}
			_ = f.Close()
			w.files[i] = nf
			w.gens[i] = append(w.gens[i], w.next[i])
		}
		if late > 0 && !reopenAt.IsZero() && !time.Now().Before(reopenAt) {
			reopenAt = time.Time{}
		}
		time.Sleep(time.Millisecond)
	}
}

// Where a line is on disk.
const (
	nowhere   = 0
	inRotated = 1 // a rotated file: renamed, copied, compressed or in olddir
	inLive    = 2 // a file at a path the agent reads
)

// linesOnDisk says, per file and line number, where the line is under logs, and counts the
// rotated files. A last line without its newline is torn (copytruncate's copy can end in the
// middle of a write) and does not count.
func linesOnDisk(t *testing.T, logs string, files int) (found [][]int8, rotated int) {
	t.Helper()
	found = make([][]int8, files)
	err := filepath.WalkDir(logs, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		where := int8(inLive)
		if !strings.HasSuffix(path, ".log") || filepath.Dir(path) != logs {
			where = inRotated
			rotated++
		}
		fd, err := os.Open(path)
		if err != nil {
			return err
		}
		defer fd.Close()
		var r io.Reader = fd
		if strings.HasSuffix(path, ".gz") {
			gz, err := gzip.NewReader(fd)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			r = gz
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			line := data[:i]
			data = data[i+1:]
			f, n, ok := parseLine(line)
			if !ok || f >= files {
				continue // torn
			}
			for len(found[f]) <= n {
				found[f] = append(found[f], nowhere)
			}
			found[f][n] = max(found[f][n], where)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the log files back: %v", err)
	}
	return found, rotated
}

func countPresent(lines [][]byte, next []int) int {
	seen := make([]map[int]bool, len(next))
	for i := range seen {
		seen[i] = map[int]bool{}
	}
	for _, l := range lines {
		if f, n, ok := parseLine(l); ok && f < len(next) && n < next[f] {
			seen[f][n] = true
		}
	}
	c := 0
	for _, s := range seen {
		c += len(s)
	}
	return c
}

type rotationResult struct {
	dups       int
	lostWindow int // copytruncate: missing, and in no file on disk
	lostInCopy int // copytruncate: missing, and only in a rotated copy
	lostRuns   int // contiguous runs of lost lines (copytruncate)
	torn       int // copytruncate: a line cut short in the stream
	crossOrder int // lines of a newer file at the path that arrived before older lines
}

// verify checks lines (in stream order) against what was written.
//
// Every line must arrive, except with copytruncate, where a loss is allowed only at a
// truncation: one contiguous run per file per rotation at most, made of the copy's last lines
// (written before logrotate's copy, but not yet read by the agent when the file was
// truncated: the agent does not read the copy, whose name does not match) followed by lines
// in no file at all (written between the copy and the truncate). Both are counted and
// reported; a line that is still in a live file and missing fails, as does a loss anywhere
// else. A line cut short at a truncation (the agent had read part of a write) is counted as
// torn.
//
// Within one opened file the order must be exact; across a rotation (the old file's tail vs
// the new file's head) a reordering is counted and reported.
func (w *rotWriter) verify(t *testing.T, lines [][]byte, onDisk [][]int8, copytruncate bool) rotationResult {
	t.Helper()
	var r rotationResult
	seen := make([][]int, len(w.files))
	for i := range seen {
		seen[i] = make([]int, w.next[i])
	}
	lastInGen := make([]map[int]int, len(w.files))
	maxN := make([]int, len(w.files))
	for i := range lastInGen {
		lastInGen[i] = map[int]int{}
		maxN[i] = -1
	}
	bad, disorder := 0, 0
	for _, l := range lines {
		f, n, ok := parseLine(l)
		if !ok || f >= len(seen) || n >= len(seen[f]) {
			if copytruncate && tornLine(l) {
				r.torn++
				continue
			}
			if bad < 5 {
				t.Errorf("line that was never written: %q", l)
			}
			bad++
			continue
		}
		seen[f][n]++
		if seen[f][n] > 1 {
			r.dups++
			continue
		}
		g := w.gen(f, n)
		if last, ok := lastInGen[f][g]; ok && n <= last {
			if disorder < 5 {
				t.Errorf("f%d line %d arrived after line %d of the same file", f, n, last)
			}
			disorder++
		}
		lastInGen[f][g] = n
		if n < maxN[f] {
			r.crossOrder++
		}
		maxN[f] = max(maxN[f], n)
	}
	if r.torn > rotations*len(w.files) {
		t.Errorf("%d torn lines; copytruncate explains at most one per file per rotation", r.torn)
	}
	missing := 0
	for f := range seen {
		runs := 0
		inRun, windowSeen := false, false
		for n, c := range seen[f] {
			if c > 0 {
				inRun = false
				continue
			}
			where := int8(nowhere)
			if n < len(onDisk[f]) {
				where = onDisk[f][n]
			}
			if !copytruncate || where == inLive {
				if missing < 5 {
					t.Errorf("f%d line %07d never arrived (where on disk: %d)", f, n, where)
				}
				missing++
				inRun = false
				continue
			}
			if !inRun {
				runs++
				inRun, windowSeen = true, false
			}
			if where == nowhere {
				r.lostWindow++
				windowSeen = true
				continue
			}
			r.lostInCopy++
			if windowSeen {
				t.Errorf("f%d line %07d is in a rotated copy and missing, after lines in no file: not a truncation", f, n)
			}
		}
		r.lostRuns += runs
		if runs > rotations {
			t.Errorf("f%d: lost lines form %d runs; copytruncate explains at most one per rotation (%d)", f, runs, rotations)
		}
	}
	if missing > 0 || bad > 0 || disorder > 0 {
		t.Errorf("%d lines missing, %d unknown lines, %d out of order within a file, of %d written", missing, bad, disorder, w.total())
		t.Logf("f0: first line of each file opened at the path: %v; runs of consecutive lines in stream order: %s",
			w.gens[0], arrivalRuns(lines, 0))
	}
	return r
}

// tornLine says whether l is the start of a line the writer writes, cut short.
func tornLine(l []byte) bool {
	parts := strings.SplitN(string(l), " ", 3)
	if len(parts[0]) == 0 || parts[0][0] != 'f' || strings.Trim(parts[0][1:], "0123456789") != "" {
		return false
	}
	if len(parts) > 1 && (len(parts[1]) > 7 || strings.Trim(parts[1], "0123456789") != "") {
		return false
	}
	return len(parts) < 3 || strings.HasPrefix(padding, parts[2])
}

// gen returns which of the files opened at f's path line n was written to.
func (w *rotWriter) gen(f, n int) int {
	g := 0
	for i, start := range w.gens[f] {
		if n >= start {
			g = i
		}
	}
	return g
}

// arrivalRuns describes the order in which file f's lines arrived, as runs "a-b".
func arrivalRuns(lines [][]byte, file int) string {
	var b strings.Builder
	first, last := -1, -1
	flush := func() {
		if first >= 0 {
			fmt.Fprintf(&b, " %d-%d", first, last)
		}
	}
	for _, l := range lines {
		f, n, ok := parseLine(l)
		if !ok || f != file {
			continue
		}
		if n != last+1 || first < 0 {
			flush()
			first = n
		}
		last = n
	}
	flush()
	return b.String()
}
