package flow

import (
	"context"
	"hash/fnv"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/tailer"
)

// trackedFile writes content to path and returns the source the tailer would make of it.
func trackedFile(t *testing.T, path, content string, index uint32) *tailer.Source {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	n := min(len(content), 1024)
	h := fnv.New64a()
	_, _ = h.Write([]byte(content[:n]))
	return &tailer.Source{Index: index, ID: tailer.FileID{Dev: uint64(st.Dev), Ino: st.Ino},
		Fingerprint: tailer.Fingerprint{Len: uint32(n), Sum: h.Sum64()}, Path: path}
}

// spoolLines puts one record holding lines of source up to offset, as the aggregator would.
func spoolLines(t *testing.T, f *Flow, source uint32, offset int64) {
	t.Helper()
	out := output{f: f, ctx: context.Background()}
	if err := out.Put(&aggregator.Record{PartitionKey: "k", Data: []byte("lines"), UserRecords: 1,
		Marks: []aggregator.Mark{{Source: source, Offset: offset}}}); err != nil {
		t.Fatal(err)
	}
	if err := f.spool.Sync(); err != nil {
		t.Fatal(err)
	}
}

// ackAll acknowledges every frame in the spool, as the shipper does once the destination
// accepted them, and writes the ack to disk.
func ackAll(t *testing.T, f *Flow) {
	t.Helper()
	for f.spool.AckedThrough() < f.spool.LastSeq() {
		fr, err := f.spool.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := f.spool.Ack(fr.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.spool.Sync(); err != nil {
		t.Fatal(err)
	}
}

// shipState asks both the running flow and its state on disk (`kinship status --file`)
// and fails when they disagree on whether the file is shipped.
func shipState(t *testing.T, f *Flow, path string) FileShipStatus {
	t.Helper()
	live := f.FileShipped(path)
	disk := ReadFileShipped(f.cfg.Name, f.dir, path)
	if live.Shipped != disk.Shipped || live.Reason != disk.Reason {
		t.Fatalf("running flow says %+v, state on disk says %+v", live, disk)
	}
	return disk
}

func TestFileShippedOnlyOnceEveryLineIsAcknowledged(t *testing.T) {
	dir := t.TempDir()
	f := testFlow(t, dir)
	path := filepath.Join(t.TempDir(), "app.log")
	src := trackedFile(t, path, "one\ntwo\n", 1)
	if st := shipState(t, f, path); st.Shipped || st.Reason != ShipReasonUnknown || st.LeftBytes != 8 {
		t.Fatalf("before the flow saw it: %+v, want not tracked, 8 bytes left", st)
	}
	sink{f: f}.Open(src, 0)
	f.checkpoint()
	if st := shipState(t, f, path); st.Shipped || st.Reason != ShipReasonNotRead || st.LeftBytes != 8 {
		t.Fatalf("opened, nothing read: %+v, want not read, 8 bytes left", st)
	}
	spoolLines(t, f, 1, 8)
	f.checkpoint()
	st := shipState(t, f, path)
	if st.Shipped || st.Reason != ShipReasonUnacked || st.Position != 8 || st.LeftBytes != 8 {
		t.Fatalf("read and in the spool: %+v, want unacknowledged at position 8, 8 bytes left", st)
	}
	if disk := ReadFileShipped(f.cfg.Name, f.dir, path); disk.UnackedFrames != 1 {
		t.Errorf("unacked frames = %d, want 1", disk.UnackedFrames)
	}
	ackAll(t, f)
	if st := shipState(t, f, path); !st.Shipped || st.LeftBytes != 0 {
		t.Fatalf("read and acknowledged: %+v, want shipped", st)
	}
	// The writer appends: the new line is not shipped.
	appendTo(t, path, "three\n")
	if st := shipState(t, f, path); st.Shipped || st.Reason != ShipReasonNotRead || st.LeftBytes != 6 {
		t.Fatalf("after a new line: %+v, want not read, 6 bytes left", st)
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	fd, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fd.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := fd.Close(); err != nil {
		t.Fatal(err)
	}
}

// A last line without its newline was handed over after partial_line_timeout, but the
// writer may still be writing it: not shipped.
func TestFileShippedNotWithAPartialLastLine(t *testing.T) {
	dir := t.TempDir()
	f := testFlow(t, dir)
	path := filepath.Join(t.TempDir(), "app.log")
	src := trackedFile(t, path, "one\ntw", 1)
	sink{f: f}.Open(src, 0)
	spoolLines(t, f, 1, 6)
	f.checkpoint()
	ackAll(t, f)
	if st := shipState(t, f, path); st.Shipped || st.Reason != ShipReasonPartial {
		t.Fatalf("%+v, want not shipped: partial last line", st)
	}
}

// The position in positions.json lags the spool by a checkpoint interval; the frames after
// the snapshot carry the marks (as restore replays them).
func TestReadFileShippedReplaysFramesAfterTheSnapshot(t *testing.T) {
	dir := t.TempDir()
	f := testFlow(t, dir)
	path := filepath.Join(t.TempDir(), "app.log")
	src := trackedFile(t, path, "one\ntwo\n", 1)
	sink{f: f}.Open(src, 0)
	f.checkpoint() // snapshot: offset 0
	spoolLines(t, f, 1, 4)
	spoolLines(t, f, 1, 8)
	if off, _ := savedOffset(t, dir, src.ID); off != 0 {
		t.Fatalf("snapshot at %d, the test wants it behind the spool", off)
	}
	if st := ReadFileShipped(f.cfg.Name, dir, path); st.Reason != ShipReasonUnacked || st.Position != 8 || st.UnackedFrames != 2 {
		t.Fatalf("%+v, want position 8 from the frames, 2 unacknowledged", st)
	}
	ackAll(t, f)
	if st := ReadFileShipped(f.cfg.Name, dir, path); !st.Shipped {
		t.Fatalf("%+v, want shipped", st)
	}
}

// Another file under the same path (logrotate's create, or a copy put back) is not the file
// that was shipped, nor is the same inode with other content.
func TestFileShippedIsAboutTheFileNotThePath(t *testing.T) {
	dir := t.TempDir()
	f := testFlow(t, dir)
	path := filepath.Join(t.TempDir(), "app.log")
	src := trackedFile(t, path, "one\ntwo\n", 1)
	sink{f: f}.Open(src, 0)
	spoolLines(t, f, 1, 8)
	f.checkpoint()
	ackAll(t, f)
	if st := shipState(t, f, path); !st.Shipped {
		t.Fatalf("%+v, want shipped", st)
	}
	// Same content, other inode.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("one\ntwo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st := shipState(t, f, path); st.Shipped || st.Reason != ShipReasonUnknown {
		t.Fatalf("another inode at the path: %+v, want not tracked", st)
	}
	if st := shipState(t, f, path+".1"); !st.Shipped {
		t.Fatalf("the shipped file under its rotated name: %+v, want shipped", st)
	}
	// Same inode rewritten in place with other content of the same length.
	if err := os.WriteFile(path+".1", []byte("ONE\nTWO\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st := shipState(t, f, path+".1"); st.Shipped || st.Reason != ShipReasonUnknown {
		t.Fatalf("rewritten in place: %+v, want not tracked", st)
	}
}

// A file the tailer is done with (rotated away, read to its end) is forgotten by the
// positions, but still known to be shipped, including lines sealed after it was closed.
func TestFileShippedAfterTheTailerRetiredIt(t *testing.T) {
	dir := t.TempDir()
	f := testFlow(t, dir)
	path := filepath.Join(t.TempDir(), "app.log.1")
	src := trackedFile(t, path, "one\ntwo\n", 1)
	sink{f: f}.Open(src, 0)
	spoolLines(t, f, 1, 4)
	f.checkpoint()
	sink{f: f}.Close(src) // retired; "two" is still in an open aggregate
	f.checkpoint()
	ackAll(t, f)
	if st := shipState(t, f, path); st.Shipped || st.Reason != ShipReasonNotRead || !st.Retired || st.Position != 4 {
		t.Fatalf("retired, last line not yet in the spool: %+v, want not read at 4", st)
	}
	spoolLines(t, f, 1, 8) // the aggregate holding "two" is sealed
	f.checkpoint()
	if st := shipState(t, f, path); st.Shipped || st.Reason != ShipReasonUnacked {
		t.Fatalf("retired, last line in the spool: %+v, want unacknowledged", st)
	}
	ackAll(t, f)
	if st := shipState(t, f, path); !st.Shipped {
		t.Fatalf("retired and acknowledged: %+v, want shipped", st)
	}
	// Across a restart too (the retired files are saved with the positions).
	if err := f.spool.Close(); err != nil {
		t.Fatal(err)
	}
	g := testFlow(t, dir)
	if st := shipState(t, g, path); !st.Shipped {
		t.Fatalf("after a restart: %+v, want shipped", st)
	}
}

// Retired files are remembered within a bound, however many files rotate.
func TestPositionsBoundRetiredFiles(t *testing.T) {
	p := newPositions(filepath.Join(t.TempDir(), "positions.json"))
	for i := uint32(1); i <= maxRetired+100; i++ {
		src := &tailer.Source{Index: i, ID: tailer.FileID{Dev: 1, Ino: uint64(i)}, Path: "/var/log/app.log"}
		p.open(src, 0)
		p.appended(uint64(i), p.resolve([]aggregator.Mark{{Source: i, Offset: 100}}))
		p.close(src)
		if _, _, err := p.checkpoint(uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(p.retired) != maxRetired || len(p.closed) != maxRetired {
		t.Fatalf("%d retired files, %d closed sources kept; want %d", len(p.retired), len(p.closed), maxRetired)
	}
	if _, _, _, ok := p.lookup(tailer.FileID{Dev: 1, Ino: maxRetired + 100}); !ok {
		t.Fatal("the newest retired file was forgotten")
	}
}

// A file resumed at a restored position that restore did not keep (rotated while the agent
// was stopped, found again by the tailer) is not shipped before the frames restored with it
// are acknowledged.
func TestFileShippedWaitsForFramesOfAResumedFile(t *testing.T) {
	dir := t.TempDir()
	f := testFlow(t, dir)
	path := filepath.Join(t.TempDir(), "app.log")
	src := trackedFile(t, path, "one\ntwo\n", 1)
	sink{f: f}.Open(src, 0)
	spoolLines(t, f, 1, 8)
	f.checkpoint()
	if err := f.spool.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil { // rotated while stopped
		t.Fatal(err)
	}
	g := testFlow(t, dir)
	if _, ok := g.pos.position(src.ID); ok {
		t.Fatal("restore kept a position whose file left its path; the test wants the tailer to bring it back")
	}
	resumed := *src
	resumed.Index, resumed.Path = 7, path+".1"
	sink{f: g}.Open(&resumed, 8)
	if st := g.FileShipped(path + ".1"); st.Shipped {
		t.Fatalf("%+v: shipped before its frame was acknowledged", st)
	}
	ackAll(t, g)
	if st := g.FileShipped(path + ".1"); !st.Shipped {
		t.Fatalf("%+v: want shipped once acknowledged", st)
	}
}
