package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// backlogOptions opens in WriteBacklog with a stub that names the frame (the flow's keeps
// the envelope's positions), so that tests can tell stubs from records.
func backlogOptions(dir string) Options {
	opts := testOptions(dir)
	opts.Write = WriteBacklog
	opts.Stub = func(p []byte) []byte { return fmt.Appendf(nil, "stub of %d bytes", len(p)) }
	return opts
}

func stubFor(n int) string { return fmt.Sprintf("stub of %d bytes", n) }

// segBytes sums the sizes of dir's segment files.
func segBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, p := range segFiles(t, dir) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

func ackAll(t *testing.T, s *Spool, frames []Frame) {
	t.Helper()
	for _, f := range frames {
		if err := s.Ack(f.Seq); err != nil {
			t.Fatal(err)
		}
	}
}

// The path users run: the destination acknowledges every frame before the commit. Nothing
// of the records reaches the disk, only their stubs; after a restart the seqs, the cursor
// and the stubs (the caller's positions) are all there.
func TestBacklogAckedFramesAreNotWritten(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, backlogOptions(dir))
	const n, size = 20, MaxHeldBytes / 32 // all within the lead: none waits for Next
	before := segBytes(t, dir)
	for i := uint64(1); i <= n; i++ {
		mustAppend(t, s, payloadFor(i, size))
	}
	got := nextFrames(t, s, n) // handed out before any commit
	checkFrames(t, got, seqRange(1, n), func(uint64) int { return size })
	ackAll(t, s, got)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	grew := segBytes(t, dir) - before
	if grew >= 2*size { // 20 stubs and an ack frame: ~1 KB
		t.Fatalf("segments grew by %d bytes for %d acknowledged frames of %d bytes: the records were written", grew, n, size)
	}
	st := s.Stats()
	if st.Durable != n || st.AckedThrough != n || st.Delivered != n || st.DeliveredBytes != n*size {
		t.Fatalf("stats %+v, want durable, acked and delivered %d (%d bytes)", st, n, n*size)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	r := mustOpen(t, backlogOptions(dir))
	if r.LastSeq() != n || r.AckedThrough() != n || r.Recovery() != (Recovery{}) {
		t.Fatalf("reopened: last %d acked %d recovery %+v, want %d %d none", r.LastSeq(), r.AckedThrough(), r.Recovery(), n, n)
	}
	reps := replayAll(t, r, 1)
	if len(reps) != n {
		t.Fatalf("Replay returned %d frames, want %d stubs", len(reps), n)
	}
	for i, f := range reps {
		if f.Seq != uint64(i+1) || !f.Delivered || string(f.Payload) != stubFor(size) {
			t.Fatalf("Replay frame %d: seq %d delivered %v payload %q", i, f.Seq, f.Delivered, f.Payload)
		}
	}
	noNext(t, r)
	if seq := mustAppend(t, r, []byte("next")); seq != n+1 {
		t.Fatalf("next seq %d, want %d", seq, n+1)
	}
	b, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.LastSeq != n || b.AckedThrough != n || b.UnackedFrames != 0 {
		t.Fatalf("Inspect %+v", b)
	}
}

// A destination that is slow or down: the frames not acknowledged at the commit are written
// and fsynced as in WriteAlways, the acknowledged ones are stubs; after a restart the
// unacknowledged ones ship again with their payloads.
func TestBacklogUnackedFramesAreWritten(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, backlogOptions(dir))
	const n, size = 10, 32 << 10
	before := segBytes(t, dir)
	for i := uint64(1); i <= n; i++ {
		mustAppend(t, s, payloadFor(i, size))
	}
	got := nextFrames(t, s, 5)
	ackAll(t, s, got[:3])
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if grew := segBytes(t, dir) - before; grew < 7*size || grew > 8*size {
		t.Fatalf("segments grew by %d bytes, want the 7 unacknowledged frames of %d bytes", grew, size)
	}
	// The reader goes on where it was: 6..10 from the cache, none twice.
	checkFrames(t, nextFrames(t, s, 5), seqRange(6, n), func(uint64) int { return size })
	noNext(t, s)
	// Acks of written frames after the commit move the cursor as usual.
	if err := s.Ack(4); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	r := mustOpen(t, backlogOptions(dir))
	if r.AckedThrough() != 4 || r.LastSeq() != n {
		t.Fatalf("reopened: acked %d last %d, want 4 %d", r.AckedThrough(), r.LastSeq(), n)
	}
	checkFrames(t, nextFrames(t, r, 6), seqRange(5, n), func(uint64) int { return size })
	reps := replayAll(t, r, 1)
	for _, f := range reps {
		if f.Delivered != (f.Seq <= 3) {
			t.Fatalf("Replay frame %d delivered=%v", f.Seq, f.Delivered)
		}
	}
	if len(reps) != n {
		t.Fatalf("Replay returned %d frames, want %d", len(reps), n)
	}
}

// Acks out of order: a frame acknowledged above the cursor is a stub; after a restart whose
// cursor is below it, Next steps over it and the cursor moves past it once the frame before
// is acknowledged.
func TestBacklogOutOfOrderAckSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, backlogOptions(dir))
	for i := uint64(1); i <= 4; i++ {
		mustAppend(t, s, payloadFor(i, 100))
	}
	nextFrames(t, s, 4)
	if err := s.Ack(2); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := mustOpen(t, backlogOptions(dir))
	if r.AckedThrough() != 0 {
		t.Fatalf("cursor %d, want 0", r.AckedThrough())
	}
	got := nextFrames(t, r, 3)
	if got[0].Seq != 1 || got[1].Seq != 3 || got[2].Seq != 4 {
		t.Fatalf("after restart Next gave %d %d %d, want 1 3 4", got[0].Seq, got[1].Seq, got[2].Seq)
	}
	if err := r.Ack(1); err != nil {
		t.Fatal(err)
	}
	if r.AckedThrough() != 2 {
		t.Fatalf("cursor %d after acking 1, want 2 (2 was delivered before the restart)", r.AckedThrough())
	}
}

// The crash windows of backlog mode, as images of the directory: kill -9 (page cache kept:
// copyDir of the live directory) and power loss (only what the last commit fsynced).
func TestBacklogCrashWindows(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, backlogOptions(dir))
	for i := uint64(1); i <= 4; i++ {
		mustAppend(t, s, payloadFor(i, 1000))
	}
	ackAll(t, s, nextFrames(t, s, 4))
	if err := s.Sync(); err != nil { // 1..4: stubs, durable
		t.Fatal(err)
	}
	powerLoss := copyDir(t, dir) // what survives a power loss from now until the next commit
	for i := uint64(5); i <= 8; i++ {
		mustAppend(t, s, payloadFor(i, 1000))
	}
	ackAll(t, s, nextFrames(t, s, 2)) // 5, 6 acknowledged; 7, 8 in memory only
	s.writeAcks()                     // as the background goroutine does when the cursor moves
	// Acknowledged, their stubs written but not fsynced: Durable (what the caller may save
	// positions up to) must not cover them yet.
	if d := s.Durable(); d != 4 {
		t.Fatalf("Durable %d before the commit, want 4", d)
	}
	killed := copyDir(t, dir)

	// kill -9: the stubs of 5 and 6 were in the page cache; 7 and 8 were never written
	// (nor acknowledged): their lines are read again, their seqs are given out again (never
	// durable, no caller state refers to them), the cursor is not past them.
	k := mustOpen(t, backlogOptions(killed))
	if k.LastSeq() != 6 || k.AckedThrough() != 6 || k.Recovery() != (Recovery{}) {
		t.Fatalf("after kill -9: last %d acked %d recovery %+v, want 6 6 none", k.LastSeq(), k.AckedThrough(), k.Recovery())
	}
	if reps := replayAll(t, k, 5); len(reps) != 2 || !reps[0].Delivered || string(reps[1].Payload) != stubFor(1000) {
		t.Fatalf("Replay after kill -9: %+v", reps)
	}
	noNext(t, k)
	if seq := mustAppend(t, k, []byte("again")); seq != 7 {
		t.Fatalf("seq after kill -9 %d, want 7", seq)
	}

	// Power loss before the commit: back to the last commit. 5 and 6 were acknowledged
	// since: their positions were never saved (Durable was 4), their lines are read and
	// sent again: the duplicates the contract allows.
	p := mustOpen(t, backlogOptions(powerLoss))
	if p.LastSeq() != 4 || p.AckedThrough() != 4 || p.Recovery() != (Recovery{}) {
		t.Fatalf("after power loss: last %d acked %d recovery %+v, want 4 4 none", p.LastSeq(), p.AckedThrough(), p.Recovery())
	}
	noNext(t, p)

	// The commit: stubs and the unacknowledged frames become durable together.
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if d := s.Durable(); d != 8 {
		t.Fatalf("Durable %d after the commit, want 8", d)
	}
	r := mustOpen(t, backlogOptions(copyDir(t, dir)))
	if r.LastSeq() != 8 || r.AckedThrough() != 6 {
		t.Fatalf("after the commit: last %d acked %d, want 8 6", r.LastSeq(), r.AckedThrough())
	}
	checkFrames(t, nextFrames(t, r, 2), seqRange(7, 8), func(uint64) int { return 1000 })
	reps := replayAll(t, r, 5)
	if len(reps) != 4 || !reps[0].Delivered || !reps[1].Delivered || reps[2].Delivered || reps[3].Delivered {
		t.Fatalf("Replay from 5: %d frames", len(reps))
	}
}

// Writes and fsyncs failing in a commit (the file-system seam): nothing acknowledged or
// appended is lost or duplicated on disk, Append waits once the frames in memory reach the
// bound, and a restart recovers the frames exactly.
func TestBacklogCommitWriteFaults(t *testing.T) {
	for _, fault := range []string{"write", "half write", "fsync"} {
		t.Run(fault, func(t *testing.T) {
			dir := t.TempDir()
			ffs := &faultFS{}
			opts := backlogOptions(dir)
			opts.fs = ffs
			s := mustOpen(t, opts)
			const size = 2000
			for i := uint64(1); i <= 6; i++ {
				mustAppend(t, s, payloadFor(i, size))
			}
			got := nextFrames(t, s, 3)
			ackAll(t, s, got[:2])
			// The stubs of 1 and 2 are written as the cursor moves (the background goroutine
			// may be at it): done here, so that the fault hits the commit's first write.
			s.writeAcks()
			ffs.mu.Lock()
			switch fault {
			case "write":
				ffs.failWrites = true
			case "half write":
				ffs.failNextWrite = true // the first frame of the commit is torn
			case "fsync":
				ffs.failNextSync = true
			}
			ffs.mu.Unlock()
			err := s.Sync()
			if fault != "fsync" && err == nil {
				t.Fatal("Sync with failing writes returned nil")
			}
			if fault == "write" {
				if d := s.Durable(); d != 0 {
					t.Fatalf("Durable %d while writes fail", d)
				}
				if !errors.Is(err, errInjected) {
					t.Fatalf("Sync error %v, want the injected fault", err)
				}
				ffs.mu.Lock()
				ffs.failWrites = false
				ffs.mu.Unlock()
			}
			if err := s.Sync(); err != nil {
				t.Fatalf("Sync once the disk works: %v", err)
			}
			if d := s.Durable(); d != 6 {
				t.Fatalf("Durable %d, want 6", d)
			}
			checkFrames(t, nextFrames(t, s, 3), seqRange(4, 6), func(uint64) int { return size })
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			r := mustOpen(t, backlogOptions(dir))
			if r.AckedThrough() != 2 || r.LastSeq() != 6 || r.Recovery().FirstLost != 0 {
				t.Fatalf("reopened: acked %d last %d recovery %+v", r.AckedThrough(), r.LastSeq(), r.Recovery())
			}
			checkFrames(t, nextFrames(t, r, 4), seqRange(3, 6), func(uint64) int { return size })
			reps := replayAll(t, r, 1)
			if len(reps) != 6 || !reps[0].Delivered || !reps[1].Delivered || reps[2].Delivered {
				t.Fatalf("Replay: %d frames", len(reps))
			}
		})
	}
}

// A full disk while the destination is down: appends go to memory until the bound, then
// Append waits (the tailer stops, the files are the buffer), as in WriteAlways; once the
// disk has room everything is written.
func TestBacklogDiskFullBlocksAtTheBound(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{}
	opts := backlogOptions(dir)
	opts.fs = ffs
	opts.SyncBytes = 64 << 10 // the bound: MaxHeldBytes (no Next takes the frames)
	opts.FsyncInterval = 5 * time.Millisecond
	logs := &lockedBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s := mustOpen(t, opts)
	ffs.mu.Lock()
	ffs.failWrites = true
	ffs.mu.Unlock()
	const size = 1 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var appended uint64
	for appended < 40 {
		if _, err := s.Append(ctx, payloadFor(appended+1, size)); err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
			break
		}
		appended++
	}
	if appended >= 40 || appended < MaxHeldBytes/size {
		t.Fatalf("%d frames of 1 MiB appended on a full disk: want Append to wait at the %d MiB bound", appended, MaxHeldBytes>>20)
	}
	if e := s.Stats().WriteError; e == "" {
		t.Fatal("no write error reported while the disk is full")
	}
	// Appends that succeed in memory say nothing about the disk: one episode, one line.
	if n := strings.Count(logs.String(), "spool: write failed"); n != 1 {
		t.Fatalf("%d log lines for one disk-full episode, want 1:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "writes succeed again") {
		t.Fatalf("the episode ended while every write failed:\n%s", logs.String())
	}
	ffs.mu.Lock()
	ffs.failWrites = false
	ffs.mu.Unlock()
	if seq := mustAppend(t, s, payloadFor(appended+1, size)); seq != appended+1 {
		t.Fatalf("seq %d, want %d", seq, appended+1)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	checkFrames(t, nextFrames(t, s, int(appended+1)), seqRange(1, appended+1), func(uint64) int { return size })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := mustOpen(t, backlogOptions(dir))
	checkFrames(t, replayAll(t, r, 1), seqRange(1, appended+1), func(uint64) int { return size })
	if m, _ := filepath.Glob(filepath.Join(dir, "*.broken")); len(m) != 0 {
		t.Fatalf("recovery cut something: %v", m)
	}
}

// A full disk while the destination keeps up: every frame is acknowledged, but no stub can
// be written, so positions cannot advance. Append goes on only until the records
// acknowledged since the last commit reach the bound (what a crash would send again), then
// waits for the disk.
func TestBacklogDiskFullWhileDeliveringIsBounded(t *testing.T) {
	ffs := &faultFS{}
	opts := backlogOptions(t.TempDir())
	opts.fs = ffs
	opts.FsyncInterval = 5 * time.Millisecond
	s := mustOpen(t, opts)
	ffs.mu.Lock()
	ffs.failWrites = true
	ffs.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	go func() { // the destination: acknowledges everything at once
		for {
			f, err := s.Next(ctx)
			if err != nil {
				return
			}
			_ = s.Ack(f.Seq)
		}
	}()
	const size = 1 << 20
	var appended int
	for ; appended < 200; appended++ {
		if _, err := s.Append(ctx, payloadFor(uint64(appended+1), size)); err != nil {
			break
		}
	}
	if bound := 4 * s.pendLimit() / size; appended < int(bound) || appended > int(bound)+2 {
		t.Fatalf("%d frames of 1 MiB appended and delivered while no stub could be written; want Append to wait at %d", appended, bound)
	}
	if d := s.Durable(); d != 0 {
		t.Fatalf("Durable %d while nothing could be written", d)
	}
}

// The path users run, as it happens: the group commit comes while frames are in flight
// (handed out by Next, the destination's answer a few tens of ms away). The commit writes
// the stubs of the acknowledged head and stops at the first frame in flight, and Durable
// stops there too; acknowledged a moment later, those frames reach the disk as stubs only.
// A crash between the two commits finds the first one's frames, no gap, nothing lost: the
// frames in flight were never durable, so the caller's positions never covered them.
func TestBacklogCommitSkipsFramesInFlight(t *testing.T) {
	dir := t.TempDir()
	opts := backlogOptions(dir)
	opts.FsyncInterval = time.Hour // every frame is young; the test's kick is the group commit
	s := mustOpen(t, opts)
	const n, size = 8, 64 << 10
	before := segBytes(t, dir)
	for i := uint64(1); i <= n; i++ {
		mustAppend(t, s, payloadFor(i, size))
	}
	got := nextFrames(t, s, n)
	ackAll(t, s, got[:1])
	s.kick() // the group commit, as the timer runs it
	waitFor(t, "the group commit", func() bool { return s.Durable() >= 1 })
	crashed := copyDir(t, dir) // nothing is written between the commits: kill -9 and power loss alike
	if d := s.Durable(); d != 1 {
		t.Fatalf("Durable %d after a group commit with frames 2..%d in flight, want 1", d, n)
	}
	if grew := segBytes(t, dir) - before; grew >= size {
		t.Fatalf("segments grew by %d bytes: the group commit wrote frames in flight", grew)
	}
	ackAll(t, s, got[1:])
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if grew := segBytes(t, dir) - before; grew >= size {
		t.Fatalf("segments grew by %d bytes for %d frames acknowledged within the interval: records were written", grew, n)
	}
	if st := s.Stats(); st.Durable != n || st.Delivered != n {
		t.Fatalf("stats %+v, want %d durable, all delivered", st, n)
	}

	c := mustOpen(t, backlogOptions(crashed))
	if c.LastSeq() != 1 || c.AckedThrough() != 1 || c.Recovery() != (Recovery{}) {
		t.Fatalf("after a crash between the commits: last %d acked %d recovery %+v, want 1 1 none",
			c.LastSeq(), c.AckedThrough(), c.Recovery())
	}
	if reps := replayAll(t, c, 1); len(reps) != 1 || !reps[0].Delivered {
		t.Fatalf("Replay after the crash: %+v", reps)
	}
	noNext(t, c)
	if seq := mustAppend(t, c, []byte("again")); seq != 2 {
		t.Fatalf("seq after the crash %d, want 2", seq)
	}
}

// manualClock is a time the test moves (Options.now).
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A frame left unacknowledged for an interval is a backlog: the group commit writes it as
// a data frame (and the stubs of acknowledged frames around it), and stops at the first
// younger frame not acknowledged. Sync writes everything, however young. Crash images after
// each step hold exactly the frames up to Durable.
func TestBacklogCommitWritesFramesOnceTheyAreABacklog(t *testing.T) {
	dir := t.TempDir()
	clock := &manualClock{t: time.Unix(1e9, 0)}
	opts := backlogOptions(dir)
	opts.FsyncInterval = time.Second
	opts.now = clock.now
	s := mustOpen(t, opts)
	const size = 4000
	for i := uint64(1); i <= 3; i++ {
		mustAppend(t, s, payloadFor(i, size))
	}
	clock.advance(opts.FsyncInterval / 2)
	for i := uint64(4); i <= 6; i++ {
		mustAppend(t, s, payloadFor(i, size))
	}
	got := nextFrames(t, s, 6)
	ackAll(t, s, []Frame{got[1], got[4]}) // 2 and 5; 1 is the head, in flight
	clock.advance(opts.FsyncInterval / 2) // 1..3 appended an interval ago, 4..6 half of one

	before := segBytes(t, dir)
	if err := s.commit(flushDue); err != nil {
		t.Fatal(err)
	}
	if d := s.Durable(); d != 3 {
		t.Fatalf("Durable %d, want 3: frames 1..3 are a backlog, 4 is young and in flight", d)
	}
	if grew := segBytes(t, dir) - before; grew < 2*size || grew >= 3*size {
		t.Fatalf("segments grew by %d bytes, want data frames 1 and 3 (%d bytes each) and a stub", grew, size)
	}
	r := mustOpen(t, backlogOptions(copyDir(t, dir)))
	if r.LastSeq() != 3 || r.AckedThrough() != 0 || r.Recovery() != (Recovery{}) {
		t.Fatalf("crash image: last %d acked %d recovery %+v, want 3 0 none", r.LastSeq(), r.AckedThrough(), r.Recovery())
	}
	reps := replayAll(t, r, 1)
	if len(reps) != 3 || reps[0].Delivered || !reps[1].Delivered || reps[2].Delivered {
		t.Fatalf("crash image: Replay %+v, want data 1, stub 2, data 3", reps)
	}
	checkFrames(t, nextFrames(t, r, 2), []uint64{1, 3}, func(uint64) int { return size })
	noNext(t, r)

	// Sync: 4 and 6 are young and in flight, 5 acknowledged: all of them go now.
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if d := s.Durable(); d != 6 {
		t.Fatalf("Durable %d after Sync, want 6", d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r = mustOpen(t, backlogOptions(dir))
	checkFrames(t, nextFrames(t, r, 4), []uint64{1, 3, 4, 6}, func(uint64) int { return size })
	noNext(t, r)
}

// A destination that does not answer, with no appends or acks to arm the commit timer:
// frames too young for one commit are written by the next one all the same.
func TestBacklogYoungFramesAreWrittenWithoutNewAppends(t *testing.T) {
	opts := backlogOptions(t.TempDir())
	opts.FsyncInterval = 20 * time.Millisecond
	s := mustOpen(t, opts)
	mustAppend(t, s, payloadFor(1, 100))
	time.Sleep(opts.FsyncInterval / 2) // 2 is young at the commit that writes 1
	mustAppend(t, s, payloadFor(2, 100))
	nextFrames(t, s, 2)
	waitFor(t, "both frames durable", func() bool { return s.Durable() == 2 })
}

// The shipper is the bottleneck while the destination keeps up (every frame is young): the
// frames Next has not taken stay in memory up to MaxHeldBytes, then Append waits for Next,
// and nothing is written: backpressure costs nothing, writing them would cost disk and CPU
// for records acknowledged a moment later. A frame taken lets the next Append in.
func TestBacklogAppendWaitsForNextWhileTheDestinationKeepsUp(t *testing.T) {
	dir := t.TempDir()
	opts := backlogOptions(dir)
	opts.FsyncInterval = time.Hour
	s := mustOpen(t, opts)
	before := segBytes(t, dir)
	const size = 1 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	appended := 0
	for ; appended < 40; appended++ {
		if _, err := s.Append(ctx, payloadFor(uint64(appended+1), size)); err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
			break
		}
	}
	if appended != MaxHeldBytes/size {
		t.Fatalf("%d frames of 1 MiB appended with none taken: want Append to wait at %d", appended, MaxHeldBytes/size)
	}
	if grew := segBytes(t, dir) - before; grew != 0 {
		t.Fatalf("segments grew by %d bytes while the destination keeps up", grew)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(context.Background(), payloadFor(uint64(appended+1), size))
		done <- err
	}()
	mustNext(t, s)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A destination that takes nothing (down, or its requests hang): the frames waiting in
// memory become a backlog after an interval and go to disk, so Append goes on, as in
// WriteAlways, and the memory stays bounded.
func TestBacklogHeldFramesGoToDiskWhenNothingTakesThem(t *testing.T) {
	opts := backlogOptions(t.TempDir())
	opts.FsyncInterval = 10 * time.Millisecond
	s := mustOpen(t, opts)
	const size = 1 << 20
	const n = 3 * MaxHeldBytes / size
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := uint64(1); i <= n; i++ {
		if _, err := s.Append(ctx, payloadFor(i, size)); err != nil {
			t.Fatalf("Append %d with nothing taken: %v", i, err)
		}
		s.mu.Lock()
		held := s.pendHeld
		s.mu.Unlock()
		if held > MaxHeldBytes {
			t.Fatalf("%d bytes held in memory after Append %d, bound %d", held, i, MaxHeldBytes)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	checkFrames(t, nextFrames(t, s, n), seqRange(1, n), func(uint64) int { return size })
}

// A commit writes frames from the caller's memory and keeps them by reference until its
// fsync: AckFrame tells the caller not to recycle such a payload, and a caller that
// recycles (scribbles over) every payload it is allowed to leaves the frames intact, even
// when the fsync fails and the frames are rewritten from memory into a new segment.
func TestBacklogAckFrameKeepsPayloadsTheSpoolStillWrites(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{}
	opts := backlogOptions(dir)
	opts.fs = ffs
	opts.CacheBytes = 16 << 20 // AppendShared then hands the payloads over
	s := mustOpen(t, opts)
	const size = 3 * scratchBytes // written from the caller's slice, not copied
	for i := uint64(1); i <= 3; i++ {
		if _, err := s.AppendShared(context.Background(), payloadFor(i, size)); err != nil {
			t.Fatal(err)
		}
	}
	got := nextFrames(t, s, 3)
	ffs.mu.Lock()
	ffs.failSyncs = true
	ffs.mu.Unlock()
	if err := s.Sync(); err == nil {
		t.Fatal("Sync with failing fsyncs returned nil")
	}
	recycle := func(f Frame) bool {
		reuse, err := s.AckFrame(f.Seq)
		if err != nil {
			t.Fatal(err)
		}
		if reuse {
			for i := range f.Payload {
				f.Payload[i] = 0xAA
			}
		}
		return reuse
	}
	for _, f := range got {
		if recycle(f) {
			t.Fatalf("AckFrame(%d) allows reuse of a payload written by a commit whose fsync failed", f.Seq)
		}
	}
	ffs.mu.Lock()
	ffs.failSyncs = false
	ffs.mu.Unlock()
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// A frame durable when acknowledged: its payload may be reused at once.
	if _, err := s.AppendShared(context.Background(), payloadFor(4, size)); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if f := mustNext(t, s); f.Seq != 4 || !recycle(f) {
		t.Fatalf("AckFrame(%d) of a durable frame does not allow reuse", f.Seq)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := mustOpen(t, backlogOptions(dir))
	checkFrames(t, replayAll(t, r, 1), seqRange(1, 4), func(uint64) int { return size })
}

// Writes fail for a while: the background commits fail (and back off), and once writes work
// again an Append seals the segment (a roll writes and fsyncs every frame in memory). That
// roll is a commit that worked: the failure must not go on showing in Stats (kinship status,
// health) until the background goroutine's next try, seconds later with its backoff.
func TestBacklogRollEndsAWriteFailure(t *testing.T) {
	ffs := &faultFS{}
	opts := backlogOptions(t.TempDir())
	opts.fs = ffs
	opts.FsyncInterval = time.Millisecond
	opts.SegmentBytes = 64 << 10
	s := mustOpen(t, opts)
	ffs.mu.Lock()
	ffs.failWrites = true
	ffs.mu.Unlock()
	const size = 4 << 10
	seq := uint64(1)
	for ; seq <= 10; seq++ { // in memory, below SegmentBytes: no Append writes
		mustAppend(t, s, payloadFor(seq, size))
	}
	// The backoff of the background's retries is 800ms or more after five failures.
	waitFor(t, "failed background commits", func() bool {
		return metricValue(t, opts.Metrics.SpoolWriteErrors) >= 5
	})
	if s.Stats().WriteError == "" {
		t.Fatal("no write error reported while writes fail")
	}
	ffs.mu.Lock()
	ffs.failWrites = false
	ffs.mu.Unlock()
	for len(segFiles(t, opts.Dir)) < 2 {
		mustAppend(t, s, payloadFor(seq, size))
		seq++
	}
	if e := s.Stats().WriteError; e != "" {
		t.Fatalf("write error still reported after a roll wrote and fsynced every frame: %s", e)
	}
}

// An Ack repeated above the cursor (acks of later frames come before an earlier one's) must
// not let the caller reuse a payload the spool still writes from: the first AckFrame said
// no, and the spool recycles that payload itself once it is durable.
func TestBacklogRepeatedAckFrameKeepsPinnedPayload(t *testing.T) {
	ffs := &faultFS{}
	opts := backlogOptions(t.TempDir())
	opts.fs = ffs
	opts.CacheBytes = 16 << 20 // AppendShared hands the payloads over
	s := mustOpen(t, opts)
	const size = 3 * scratchBytes // written from the caller's slice
	for i := uint64(1); i <= 2; i++ {
		if _, err := s.AppendShared(context.Background(), payloadFor(i, size)); err != nil {
			t.Fatal(err)
		}
	}
	nextFrames(t, s, 2)
	ffs.mu.Lock()
	ffs.failSyncs = true
	ffs.mu.Unlock()
	if err := s.Sync(); err == nil { // 1 and 2 written, pinned until a good fsync
		t.Fatal("Sync with failing fsyncs returned nil")
	}
	for range 2 {
		reuse, err := s.AckFrame(2) // 1 is still in flight: 2 stays above the cursor
		if err != nil {
			t.Fatal(err)
		}
		if reuse {
			t.Fatal("AckFrame(2) repeated allows reuse of a payload the spool still refers to")
		}
	}
}

// A commit writes a frame in flight from the caller's memory, without mu: an Ack of that
// frame arriving meanwhile must not return (the caller would reuse the payload under the
// write) until the writes are done, and then says whether the payload may be reused.
func TestBacklogAckWaitsForACommitWritingTheFrame(t *testing.T) {
	ffs := &faultFS{}
	opts := backlogOptions(t.TempDir())
	opts.fs = ffs
	opts.CacheBytes = 16 << 20 // AppendShared hands the payload over
	s := mustOpen(t, opts)
	const size = 3 * scratchBytes // written from the caller's slice
	if _, err := s.AppendShared(context.Background(), payloadFor(1, size)); err != nil {
		t.Fatal(err)
	}
	f := mustNext(t, s)
	gate, held := make(chan struct{}), make(chan struct{}, 1)
	ffs.mu.Lock()
	ffs.writeGate, ffs.writeHeld = gate, held
	ffs.mu.Unlock()
	var release sync.Once
	open := func() {
		release.Do(func() {
			ffs.mu.Lock()
			ffs.writeGate, ffs.writeHeld = nil, nil
			ffs.mu.Unlock()
			close(gate)
		})
	}
	defer open() // a failing test must not leave the commit (and Close) blocked
	synced := make(chan error, 1)
	go func() { synced <- s.Sync() }() // writes frame 1, young and in flight
	<-held
	type ackResult struct {
		reuse bool
		err   error
	}
	acked := make(chan ackResult, 1)
	go func() {
		reuse, err := s.AckFrame(f.Seq)
		acked <- ackResult{reuse, err}
	}()
	select {
	case r := <-acked:
		t.Fatalf("AckFrame returned (reuse %v, err %v) while a commit was writing the frame from its payload", r.reuse, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	open()
	r := <-acked
	if r.err != nil {
		t.Fatal(r.err)
	}
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	if r.reuse {
		clear(f.Payload) // as the caller's free list would
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkFrames(t, replayAll(t, mustOpen(t, backlogOptions(opts.Dir)), 1), []uint64{1}, func(uint64) int { return size })
}

// The flow runs WriteBacklog without a cache: a payload it hands over must still come back
// from Next as the same memory, not a copy per frame (the path users run would copy every
// record and make a buffer of garbage for each). Once a commit wrote a frame Next had not
// taken, it is read back from disk, intact, into the caller's Buffers.
func TestBacklogSharedWithoutCacheIsNotCopied(t *testing.T) {
	opts := backlogOptions(t.TempDir())
	opts.CacheBytes = 0
	s := mustOpen(t, opts)
	payload := payloadFor(1, 4096)
	if _, err := s.AppendShared(context.Background(), payload); err != nil {
		t.Fatal(err)
	}
	f := mustNext(t, s)
	if &f.Payload[0] != &payload[0] {
		t.Fatal("Next copied a shared payload held in memory")
	}
	ackAll(t, s, []Frame{f})

	written := payloadFor(2, 4096)
	if _, err := s.AppendShared(context.Background(), written); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil { // the commit writes it: Next has not taken it
		t.Fatal(err)
	}
	f = mustNext(t, s)
	if &f.Payload[0] == &written[0] {
		t.Fatal("Next handed out a payload the spool dropped once written (there is no cache)")
	}
	if string(f.Payload) != string(written) {
		t.Fatal("frame read back from disk differs from the payload appended")
	}
}
