package e2e

// The crash-and-outage suite (issue 4): the spool's promise checked from outside, on the
// real binary against kinesalite. Each test is short enough for CI; KINSHIP_LONG_TESTS=1
// runs many more iterations and longer outages. Randomised tests log their seed; set
// KINSHIP_SEED to replay one.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/testenv/faultproxy"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

func longTests() bool { return os.Getenv("KINSHIP_LONG_TESTS") == "1" }

// eachWriteMode runs a crash, power-loss, outage or disk-full test once per spool.write mode
// (subtests backlog and always), or only in the one KINSHIP_SPOOL_WRITE names: both must
// keep the delivery contract.
func eachWriteMode(t *testing.T, fn func(t *testing.T, mode string)) {
	modes := []string{"backlog", "always"}
	if m := os.Getenv("KINSHIP_SPOOL_WRITE"); m != "" {
		modes = []string{m}
	}
	for _, m := range modes {
		t.Run(m, func(t *testing.T) { fn(t, m) })
	}
}

// writeModeConfig is writeConfig for a one-flow body, with the flow's spool.write set to
// mode (added to its spool mapping, which is then the last key of the flow or followed only
// by top-level keys).
func writeModeConfig(t *testing.T, dir, mode, body string) string {
	t.Helper()
	if strings.Contains(body, "\n    spool:\n") {
		body = strings.Replace(body, "\n    spool:\n", "\n    spool:\n      write: "+mode+"\n", 1)
	} else {
		body += "    spool:\n      write: " + mode + "\n"
	}
	return writeConfig(t, dir, body)
}

// seeded returns a random source whose seed is logged, or taken from KINSHIP_SEED.
func seeded(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("KINSHIP_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("KINSHIP_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with KINSHIP_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// rotator drives a writer from a goroutine of its own and rotates each file every `every`
// lines the way logrotate with dateext and an extension does: app0.log is renamed to
// app0-r0001.log and a new app0.log is created. The flows read dir/logs/*.log, which matches
// the live and the rotated names, so a file that was created, written and rotated away while
// the agent was dead is still found at the next start (a glob of live names only cannot
// promise that, whatever the agent does).
type rotator struct {
	w       *writer
	dir     string
	every   int
	since   []int
	rotated int
}

func newRotator(t *testing.T, logs string, files, every int) *rotator {
	t.Helper()
	r := &rotator{w: newWriter(t, logs, files), dir: logs, every: every, since: make([]int, files)}
	t.Cleanup(func() {
		for _, f := range r.w.files {
			_ = f.Close()
		}
	})
	return r
}

// run appends perTick lines every 10 ms until stop is closed.
func (r *rotator) run(stop <-chan struct{}, perTick int) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
		if err := r.w.append(perTick); err != nil {
			return err
		}
		if r.every == 0 {
			continue
		}
		for f := range r.w.files {
			r.since[f] += perTick / len(r.w.files)
			if r.since[f] < r.every {
				continue
			}
			r.since[f] = 0
			r.rotated++
			live := filepath.Join(r.dir, fmt.Sprintf("app%d.log", f))
			if err := os.Rename(live, filepath.Join(r.dir, fmt.Sprintf("app%d-r%04d.log", f, r.rotated))); err != nil {
				return fmt.Errorf("rotate: %w", err)
			}
			nf, err := os.OpenFile(live, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return fmt.Errorf("rotate: %w", err)
			}
			_ = r.w.files[f].Close()
			r.w.files[f] = nf
		}
	}
}

// background starts run and returns a function that stops it and reports its error.
func (r *rotator) background(t *testing.T, perTick int) (stop func()) {
	t.Helper()
	quit, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- r.run(quit, perTick) }()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		close(quit)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if !stopped {
			close(quit)
			<-done
		}
	})
	return stop
}

func kill9(t *testing.T, a *agent) {
	t.Helper()
	select {
	case <-a.exited:
		t.Fatalf("kinship exited before it was killed: %v\n%s", a.err, a.log())
	default:
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.wait(t, 10*time.Second)
}

// finish reads every file to its end with `run --once`, then checks the stream: every line
// written, nothing else; it returns the duplicate lines and records.
func finish(t *testing.T, agentEndpoint, endpoint, cfg, stream string, w *writer) (sc streamContent, dups int) {
	t.Helper()
	final := startAgent(t, agentEndpoint, "run", "--config", cfg, "--once")
	if err := final.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("kinship run --once: %v\n%s", err, final.log())
	}
	sc = readStream(t, endpoint, stream)
	return sc, w.check(t, sc.lines)
}

// crashProxy puts a fault-free faultproxy in front of kinesalite for tests that kill the
// agent: kinesalite exits (an uncaught ECONNRESET in its request handler) when a client dies
// in the middle of sending a request, and the proxy only forwards requests it has read whole.
func crashProxy(t *testing.T, endpoint string) string {
	t.Helper()
	return faultproxy.Start(t, endpoint, nil).URL
}

func logsDir(t *testing.T, dir string) string {
	t.Helper()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	return logs
}

// TestCrashKillNineAtRandomMoments: the agent is killed with SIGKILL at random moments (20 in
// CI, 200 long) of its life, from before it has opened its spool to the middle of shipping,
// while 3 files are written at a steady rate and rotated. Zero lines may be lost; duplicates
// are reported and bounded by what can be in flight at a kill: max_in_flight requests of at
// most 500 records each.
func TestCrashKillNineAtRandomMoments(t *testing.T) {
	eachWriteMode(t, testCrashKillNineAtRandomMoments)
}

func testCrashKillNineAtRandomMoments(t *testing.T, mode string) {
	rng := seeded(t)
	kills := 20
	if longTests() {
		kills = 200
	}
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "crash", 2)
	proxy := crashProxy(t, endpoint)
	dir := t.TempDir()
	r := newRotator(t, logsDir(t, dir), 3, 4000)
	cfg := writeModeConfig(t, dir, mode, kinesisConfig(dir, proxy, "crash"))

	stop := r.background(t, 60) // ~6,000 lines/s
	var lives []string
	for range kills {
		a := startAgent(t, proxy, "run", "--config", cfg)
		life := time.Duration(30+rng.IntN(900)) * time.Millisecond
		time.Sleep(life)
		kill9(t, a)
		lives = append(lives, life.String())
	}
	stop()
	t.Logf("killed at %s", strings.Join(lives, " "))

	sc, dups := finish(t, proxy, endpoint, cfg, "crash", r.w)
	t.Logf("%d lines written (%d rotations), %d arrived in %d Kinesis records; %d duplicate lines (%.3f%%) in %d duplicate records (%.2f per kill) after %d kill -9",
		r.w.total(), r.rotated, len(sc.lines), sc.records, dups, 100*float64(dups)/float64(r.w.total()),
		sc.dupRecords, float64(sc.dupRecords)/float64(kills), kills)
	if maxDup := kills * 4 * 500; sc.dupRecords > maxDup {
		t.Errorf("%d duplicate records, more than the %d that can be in flight across %d kills", sc.dupRecords, maxDup, kills)
	}
	// With spool.write: backlog a record in flight at the kill was never written: its lines
	// are read again and packed anew, so duplicates are lines, not records.
	if mode == "always" && dups > 0 && sc.dupRecords == 0 {
		t.Errorf("%d duplicate lines but no duplicate record: a line was packed twice, not resent", dups)
	}
}

// metricValue returns the value of the sample of name with flow="app" on the agent's
// /metrics page.
func metricValue(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, name+"{") && strings.Contains(l, `flow="app"`) {
			fields := strings.Fields(l)
			v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
			if err != nil {
				t.Fatalf("metrics: %q: %v", l, err)
			}
			return v
		}
	}
	t.Fatalf("metrics: no %s for flow app in:\n%s", name, body)
	return 0
}

// rssBytes is the resident set size of process pid.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// TestOutageSpoolBoundedThenDrains: the destination becomes unreachable (every connection
// reset) at a steady input rate with a 4 MiB spool in 1 MiB segments. The spool must fill to
// its bound and stay there (the tailer stops reading: the log files are the buffer), the
// process's memory must stay flat, and when the endpoint returns the running agent must
// deliver every line.
func TestOutageSpoolBoundedThenDrains(t *testing.T) {
	eachWriteMode(t, testOutageSpoolBoundedThenDrains)
}

func testOutageSpoolBoundedThenDrains(t *testing.T, mode string) {
	const maxBytes, segBytes = 4 << 20, 1 << 20
	hold := 3 * time.Second // how long the full spool is watched
	if longTests() {
		hold = 60 * time.Second
	}
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "outage", 2)
	proxy := faultproxy.Start(t, endpoint, nil)
	dir := t.TempDir()
	r := newRotator(t, logsDir(t, dir), 2, 0)
	// compression: none: the writer's lines are so repetitive that compressed they would
	// take minutes to fill 4 MiB; the bound counts bytes on disk either way (spool tests).
	cfg := writeModeConfig(t, dir, mode, kinesisConfig(dir, proxy.URL, "outage")+`    spool:
      max_bytes: 4MiB
      segment_bytes: 1MiB
      compression: none
metrics:
  listen: 127.0.0.1:0
`)
	a := startAgent(t, proxy.URL, "run", "--config", cfg)
	a.waitLog(t, "metrics listening")
	m := regexp.MustCompile(`metrics listening"? addr=([0-9.:]+)`).FindStringSubmatch(a.log())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", a.log())
	}
	addr := m[1]

	stop := r.background(t, 100) // ~10,000 lines/s, ~0.9 MB/s
	time.Sleep(time.Second)
	proxy.Cut(true)
	cutAt := time.Now()

	var maxSpool float64
	var rssFull, rssMax int64
	var fullAt time.Time
	for {
		time.Sleep(200 * time.Millisecond)
		sb := metricValue(t, addr, "kinship_spool_bytes")
		rss := rssBytes(t, a.cmd.Process.Pid)
		maxSpool, rssMax = max(maxSpool, sb), max(rssMax, rss)
		if sb > maxBytes+segBytes {
			t.Errorf("kinship_spool_bytes %.0f above max_bytes + one segment (%d)", sb, maxBytes+segBytes)
		}
		if fullAt.IsZero() && sb >= maxBytes-segBytes {
			fullAt, rssFull = time.Now(), rss
			t.Logf("spool full (%.0f bytes) %v after the cut; RSS %d MiB", sb, fullAt.Sub(cutAt).Round(time.Millisecond), rss>>20)
		}
		if fullAt.IsZero() && time.Since(cutAt) > 40*time.Second {
			t.Fatalf("the spool never filled during the outage (%.0f bytes at most): the test proves nothing", maxSpool)
		}
		if !fullAt.IsZero() && time.Since(fullAt) > hold {
			break
		}
	}
	rssEnd := rssBytes(t, a.cmd.Process.Pid)
	writtenAtRestore := r.w.total()
	t.Logf("outage %v: spool at most %.0f bytes; RSS %d MiB when full, %d MiB after %v more, %d MiB at most; %d lines written",
		time.Since(cutAt).Round(time.Millisecond), maxSpool, rssFull>>20, rssEnd>>20, hold, rssMax>>20, writtenAtRestore)
	if rssMax > 150<<20 {
		t.Errorf("RSS reached %d MiB during the outage; the spool's bound must bound memory too", rssMax>>20)
	}
	if rssEnd > rssFull+32<<20 {
		t.Errorf("RSS grew from %d to %d MiB while the spool was full: memory grows with input", rssFull>>20, rssEnd>>20)
	}

	proxy.Cut(false)
	stop()
	// The running agent, not a final --once, must drain it all.
	sc, dups := drainThenStop(t, a, endpoint, "outage", r.w)
	t.Logf("drained after the outage: %d lines in %d records, %d duplicate lines", len(sc.lines), sc.records, dups)
}

// Spool layout the power-loss test needs (spool/doc.go): segments are %020d.seg, a 32-byte
// header, then frames of a 24-byte header (payload length at bytes 4..8), the payload and
// zero padding to a multiple of 8; type 0 is never a frame.
const segHeaderLen, frameHeaderLen = 32, 24

func newestSegment(t *testing.T, spoolDir string) (name string, size int64) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(spoolDir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) == 0 {
		return "", 0
	}
	sort.Strings(segs)
	fi, err := os.Stat(segs[len(segs)-1])
	if err != nil {
		t.Fatal(err)
	}
	return segs[len(segs)-1], fi.Size()
}

// frameBoundaries returns the offsets in segment at which a frame starts or the data ends.
func frameBoundaries(t *testing.T, segment string) []int64 {
	t.Helper()
	b, err := os.ReadFile(segment)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	off := int64(segHeaderLen)
	for off+frameHeaderLen <= int64(len(b)) && b[off] != 0 {
		out = append(out, off)
		n := int64(binary.LittleEndian.Uint32(b[off+4:]))
		off += (frameHeaderLen + n + 7) &^ 7
	}
	return append(out, min(off, int64(len(b))))
}

// TestPowerLossRecovers simulates power loss after kill -9. The model: the agent writes
// positions.json (temp + fsync + rename) only for lines whose frames are durable, so a copy
// of positions.json taken at a moment T, together with every spool byte that existed at T,
// is a state the disk can be in after a power loss at any later moment; everything the
// spool wrote after T may or may not have reached the disk. So the test copies
// positions.json, notes the newest segment's length (taken after the copy, so it covers
// every frame the copy counts on), lets the agent run on, kills it, then cuts the newest
// segment back to a random length not below the noted one (at a frame boundary or in the
// middle of a frame: a torn write), and puts the old positions.json back. Older segments are
// left alone: a segment is fsynced before the next one is started. Recovery must succeed,
// and no line may be lost: lines the spool lost are read again from the files, since the
// positions went back with the spool. What was shipped from the lost bytes arrives twice.
func TestPowerLossRecovers(t *testing.T) { eachWriteMode(t, testPowerLossRecovers) }

func testPowerLossRecovers(t *testing.T, mode string) {
	rng := seeded(t)
	crashes := 6
	if longTests() {
		crashes = 60
	}
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "power", 2)
	proxy := crashProxy(t, endpoint)
	dir := t.TempDir()
	r := newRotator(t, logsDir(t, dir), 3, 6000)
	// Small segments so that crashes also land just after a roll.
	cfg := writeModeConfig(t, dir, mode, kinesisConfig(dir, proxy, "power")+`    spool:
      segment_bytes: 1MiB
`)
	flowDir := filepath.Join(dir, "state", "flows", "app")
	positions, spoolDir := filepath.Join(flowDir, "positions.json"), filepath.Join(flowDir, "spool")

	stop := r.background(t, 60)
	var snap []byte
	for i := range crashes {
		a := startAgent(t, proxy, "run", "--config", cfg)
		time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
		// T: the crash image's positions. Wait for a positions file this run saved: without
		// one, and with the spool cut back to nothing, the agent rightly takes the files as
		// new; and the one the test put back would roll every crash back to the first.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			b, err := os.ReadFile(positions)
			if err == nil && !bytes.Equal(b, snap) {
				snap = b
				break
			}
			if err != nil && !os.IsNotExist(err) || time.Now().After(deadline) {
				t.Fatalf("no new positions file within 30s: %v", err)
			}
		}
		segAtT, sizeAtT := newestSegment(t, spoolDir)
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		kill9(t, a)

		seg, size := newestSegment(t, spoolDir)
		lo := int64(segHeaderLen)
		if seg == segAtT {
			lo = sizeAtT
		}
		cut, how := size, "nothing to cut"
		if size > lo {
			if rng.IntN(2) == 0 {
				var bs []int64
				for _, b := range frameBoundaries(t, seg) {
					if b >= lo {
						bs = append(bs, b)
					}
				}
				if len(bs) > 0 {
					cut, how = bs[rng.IntN(len(bs))], "at a frame boundary"
				}
			}
			if cut == size {
				cut, how = lo+rng.Int64N(size-lo+1), "at any byte"
			}
			if err := os.Truncate(seg, cut); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(positions, snap, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Logf("crash %d: %s cut from %d to %d bytes (%s; %d at T, %d dropped); positions rolled back",
			i, filepath.Base(seg), size, cut, how, lo, size-cut)
	}
	stop()
	// One more normal start must recover from the last image, then the final run reads on.
	a := startAgent(t, proxy, "run", "--config", cfg)
	time.Sleep(time.Second)
	kill9(t, a)

	sc, dups := finish(t, proxy, endpoint, cfg, "power", r.w)
	t.Logf("%d lines written (%d rotations), %d arrived in %d records; %d duplicate lines (%.3f%%) in %d duplicate records after %d power losses",
		r.w.total(), r.rotated, len(sc.lines), sc.records, dups, 100*float64(dups)/float64(r.w.total()), sc.dupRecords, crashes)
}

// positionsCover waits until positions.json in flowDir holds every written file at its full
// size: every line is in a durable spool frame and the snapshot says so.
func positionsCover(t *testing.T, a *agent, flowDir string, logs string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var pf struct {
			Files []struct {
				Path   string `json:"path"`
				Offset int64  `json:"offset"`
			} `json:"files"`
		}
		b, err := os.ReadFile(filepath.Join(flowDir, "positions.json"))
		done := err == nil && json.Unmarshal(b, &pf) == nil && len(pf.Files) > 0
		for _, f := range pf.Files {
			fi, err := os.Stat(f.Path)
			done = done && err == nil && fi.Size() == f.Offset && strings.HasPrefix(f.Path, logs)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("positions never covered the files: %s\n%s", b, a.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSpoolDamageInNewestSegmentLosesNoLine (issue 13.5): the destination is down, every line
// is spooled and its position saved, the agent stops; then the newest segment is damaged
// (random bytes in its second frame, a length field pointing far beyond the file, a bad
// header). Recovery must cut or set aside the damage, and every line, still in the file, must
// arrive once the destination is back: positions roll back to the frames that survived.
// Before the fix 2,126 of 3,000 lines (all 3,000 with a bad header) never arrived.
func TestSpoolDamageInNewestSegmentLosesNoLine(t *testing.T) {
	eachWriteMode(t, testSpoolDamageInNewestSegmentLosesNoLine)
}

func testSpoolDamageInNewestSegmentLosesNoLine(t *testing.T, mode string) {
	endpoint := kinesalitetest.Start(t)
	damages := []struct {
		name   string
		damage func(t *testing.T, seg string, b []byte)
	}{
		{"random bytes in frame 2", func(t *testing.T, seg string, b []byte) {
			copy(b[secondFrame(t, seg)+frameHeaderLen+20:], "\x13\x37\xca\xfe\xba\xbe\x00\xff")
		}},
		{"huge length field in frame 2", func(t *testing.T, seg string, b []byte) {
			binary.LittleEndian.PutUint32(b[secondFrame(t, seg)+4:], 0xfffffff0)
		}},
		{"bad header", func(t *testing.T, _ string, b []byte) { b[1] ^= 0xff }},
	}
	for i, tc := range damages {
		t.Run(tc.name, func(t *testing.T) {
			stream := fmt.Sprintf("damage%d", i)
			kinesalitetest.CreateStream(t, endpoint, stream, 1)
			proxy := faultproxy.Start(t, endpoint, nil)
			proxy.Cut(true)
			dir := t.TempDir()
			logs := logsDir(t, dir)
			w := newWriter(t, logs, 1)
			w.write(t, 3000)
			// Small aggregates and segments: the newest segment holds several frames after a
			// sealed one.
			cfg := writeModeConfig(t, dir, mode, strings.Replace(kinesisConfig(dir, proxy.URL, stream),
				"max_bytes: 256KiB", "max_bytes: 8KiB", 1)+`    spool:
      segment_bytes: 96KiB
      compression: none
`)
			flowDir := filepath.Join(dir, "state", "flows", "app")
			a := startAgent(t, proxy.URL, "run", "--config", cfg)
			positionsCover(t, a, flowDir, logs)
			if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := a.wait(t, 15*time.Second); err != nil {
				t.Fatalf("kinship after SIGTERM: %v\n%s", err, a.log())
			}

			seg, _ := newestSegment(t, filepath.Join(flowDir, "spool"))
			b, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, seg, b)
			if err := os.WriteFile(seg, b, 0o600); err != nil {
				t.Fatal(err)
			}

			proxy.Cut(false)
			sc, dups := finish(t, proxy.URL, endpoint, cfg, stream, w)
			t.Logf("%s: %d lines arrived in %d records, %d duplicate lines", filepath.Base(seg), len(sc.lines), sc.records, dups)
		})
	}
}

// secondFrame is the offset of a segment's second frame.
func secondFrame(t *testing.T, seg string) int64 {
	t.Helper()
	bs := frameBoundaries(t, seg)
	if len(bs) < 3 {
		t.Fatalf("%s holds %d frames, want 2 at least", seg, len(bs)-1)
	}
	return bs[1]
}

// TestDeletedLockDoesNotLetASecondAgentIn (issue 13.6): deleting the files an operator finds
// in a running agent's spool directory (LOCK, in older versions) must not let a second agent
// on the same configuration open the same spool: both would ship every line, and interleave
// segments. The second agent must fail to start (after waiting for a dying predecessor,
// if the supervisor does), the first must go on, and every line arrive exactly once.
func TestDeletedLockDoesNotLetASecondAgentIn(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "lock", 1)
	proxy := crashProxy(t, endpoint)
	dir := t.TempDir()
	logs := logsDir(t, dir)
	w := newWriter(t, logs, 2)
	w.write(t, 2000)
	cfg := writeConfig(t, dir, kinesisConfig(dir, proxy, "lock"))
	flowDir := filepath.Join(dir, "state", "flows", "app")
	a := startAgent(t, proxy, "run", "--config", cfg)
	positionsCover(t, a, flowDir, logs)

	spoolDir := filepath.Join(flowDir, "spool")
	entries, err := os.ReadDir(spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".seg" {
			if err := os.Remove(filepath.Join(spoolDir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	second := startAgent(t, proxy, "run", "--config", cfg)
	select {
	case <-second.exited:
	case <-time.After(2 * time.Minute):
		t.Fatalf("a second agent runs on the same spool:\n%s", second.log())
	}
	if second.err == nil || !strings.Contains(second.log(), "in use by another spool") {
		t.Fatalf("second agent: exit %v, want a failure naming the spool in use:\n%s", second.err, second.log())
	}

	w.write(t, 2000)
	sc, dups := drainThenStop(t, a, endpoint, "lock", w)
	if dups != 0 {
		t.Errorf("%d duplicate lines: another agent shipped them too", dups)
	}
	t.Logf("%d lines in %d records", len(sc.lines), sc.records)
}
