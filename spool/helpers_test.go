package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// payloadFor returns deterministic bytes for frame i, so tests can check exact contents.
func payloadFor(i uint64, n int) []byte {
	p := make([]byte, n)
	for j := range p {
		p[j] = byte(i*131 + uint64(j)*7)
	}
	if n >= 8 {
		binary.LittleEndian.PutUint64(p, i)
	}
	return p
}

// testOptions are the options most tests open a spool with. KINSHIP_SPOOL_WRITE=backlog
// runs them with Options.Write backlog (the config's default); the tests about what is
// written, crashes and failing disks run in both modes on their own (eachWriteMode).
func testOptions(dir string) Options {
	return Options{Dir: dir, FsyncInterval: -1, Metrics: Metrics{}.withDefaults(), Write: envWriteMode()}
}

func envWriteMode() WriteMode {
	m, err := ParseWriteMode(os.Getenv("KINSHIP_SPOOL_WRITE"))
	if err != nil || os.Getenv("KINSHIP_SPOOL_WRITE") == "" {
		return WriteAlways
	}
	return m
}

// eachWriteMode runs fn once per write mode, as subtests named after it; testOptions opens
// in the subtest's mode.
func eachWriteMode(t *testing.T, fn func(t *testing.T)) {
	t.Helper()
	for _, m := range []WriteMode{WriteAlways, WriteBacklog} {
		t.Run(m.String(), func(t *testing.T) {
			t.Setenv("KINSHIP_SPOOL_WRITE", m.String())
			fn(t)
		})
	}
}

func mustOpen(t testing.TB, opts Options) *Spool {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustAppend(t testing.TB, s *Spool, p []byte) uint64 {
	t.Helper()
	seq, err := s.Append(context.Background(), p)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return seq
}

func mustNext(t testing.TB, s *Spool) Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return f
}

// noNext asserts that Next has nothing to return right now.
func noNext(t testing.TB, s *Spool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if f, err := s.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next returned frame %d (err %v), want nothing", f.Seq, err)
	}
}

func replayAll(t testing.TB, s *Spool, from uint64) []Frame {
	t.Helper()
	var out []Frame
	if err := s.Replay(from, func(f Frame) error { out = append(out, f); return nil }); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return out
}

// copyDir copies a live spool's files (not a LOCK file older versions left): what a crash would leave behind if the
// page cache survived. Files that go away while it copies (temporary files, a segment
// deleted or replaced meanwhile) are left out, as a kill -9 at that moment would.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// writtenSpool appends frames 1..n of size(i) bytes to a new spool in a temporary directory
// with segments of segBytes, closes it, and returns the directory and its segments, oldest
// first: the material of the corruption and recovery tests.
func writtenSpool(t *testing.T, n uint64, size func(uint64) int, segBytes int64) (dir string, segs []string) {
	t.Helper()
	dir = t.TempDir()
	opts := testOptions(dir)
	opts.SegmentBytes = segBytes
	s := mustOpen(t, opts)
	for i := uint64(1); i <= n; i++ {
		mustAppend(t, s, payloadFor(i, size(i)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, segFiles(t, dir)
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func checkFrames(t testing.TB, got []Frame, seqs []uint64, size func(uint64) int) {
	t.Helper()
	if len(got) != len(seqs) {
		t.Fatalf("got %d frames, want %d (%v)", len(got), len(seqs), seqs)
	}
	for i, f := range got {
		if f.Seq != seqs[i] {
			t.Fatalf("frame %d: seq %d, want %d", i, f.Seq, seqs[i])
		}
		if want := payloadFor(f.Seq, size(f.Seq)); !bytes.Equal(f.Payload, want) {
			t.Fatalf("frame seq %d: payload differs (len %d, want %d)", f.Seq, len(f.Payload), len(want))
		}
	}
}

func seqRange(a, b uint64) []uint64 {
	var out []uint64
	for i := a; i <= b; i++ {
		out = append(out, i)
	}
	return out
}

// faultFS fails the next write or sync of any file it opened, or a delete, rename or
// directory fsync, on demand.
type faultFS struct {
	osFS
	mu            sync.Mutex
	failRemove    bool // every Remove fails until cleared
	failRename    bool // every Rename fails until cleared
	failSyncDir   bool // every directory fsync fails until cleared
	failNextWrite bool // the write stores half its bytes, then fails
	failNextSync  bool
	failTruncate  bool
	failWrites    bool // every write fails until cleared
	failSyncs     bool // every fsync fails until cleared
	failAllocate  bool // every fallocate fails (no room) until cleared
	allocCalls    int  // Allocate calls
	// writeGate, when set, holds every write until it is closed; each write held first
	// sends on writeHeld (if it has room).
	writeGate chan struct{}
	writeHeld chan struct{}
}

var errInjected = errors.New("injected fault")

func (fs *faultFS) OpenFile(name string, flag int, perm os.FileMode) (segFile, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: f, fs: fs}, nil
}

func (fs *faultFS) failing(flag *bool) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return *flag
}

func (fs *faultFS) Remove(name string) error {
	if fs.failing(&fs.failRemove) {
		return errInjected
	}
	return os.Remove(name)
}

func (fs *faultFS) Rename(oldpath, newpath string) error {
	if fs.failing(&fs.failRename) {
		return errInjected
	}
	return os.Rename(oldpath, newpath)
}

func (fs *faultFS) SyncDir(dir string) error {
	if fs.failing(&fs.failSyncDir) {
		return errInjected
	}
	return fs.osFS.SyncDir(dir)
}

type faultFile struct {
	*os.File
	fs *faultFS
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	fail := f.fs.failNextWrite || f.fs.failWrites
	f.fs.failNextWrite = false
	gate, held := f.fs.writeGate, f.fs.writeHeld
	f.fs.mu.Unlock()
	if gate != nil {
		select {
		case held <- struct{}{}:
		default:
		}
		<-gate
	}
	if fail {
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, errInjected
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	fail := f.fs.failNextSync || f.fs.failSyncs
	f.fs.failNextSync = false
	f.fs.mu.Unlock()
	if fail {
		return errInjected
	}
	return f.File.Sync()
}

func (f *faultFile) Allocate(off, n int64) error {
	f.fs.mu.Lock()
	fail := f.fs.failAllocate
	f.fs.allocCalls++
	f.fs.mu.Unlock()
	if fail {
		return syscall.ENOSPC
	}
	return osFile{f.File}.Allocate(off, n)
}

func (f *faultFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	fail := f.fs.failTruncate
	f.fs.mu.Unlock()
	if fail {
		return errInjected
	}
	return f.File.Truncate(size)
}

func metricValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// nextFrames takes the next n frames from s.
func nextFrames(t testing.TB, s *Spool, n int) []Frame {
	t.Helper()
	got := make([]Frame, 0, n)
	for range n {
		got = append(got, mustNext(t, s))
	}
	return got
}

// reopenAndReplay closes s, opens its directory again and checks that recovery kept exactly
// the frames want; it returns the reopened spool.
func reopenAndReplay(t testing.TB, s *Spool, dir string, want []uint64, size func(uint64) int) *Spool {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, testOptions(dir))
	checkFrames(t, replayAll(t, s, 0), want, size)
	return s
}

// firstFailure stops goroutines that work on one spool at the first error any of them meets:
// fail keeps that error and cancels the context they share; check fails the test with it.
type firstFailure struct {
	errc   chan error
	cancel context.CancelFunc
}

func newFirstFailure(cancel context.CancelFunc) *firstFailure {
	return &firstFailure{errc: make(chan error, 1), cancel: cancel}
}

func (f *firstFailure) fail(err error) {
	select {
	case f.errc <- err:
	default:
	}
	f.cancel()
}

func (f *firstFailure) check(t *testing.T) {
	t.Helper()
	select {
	case err := <-f.errc:
		t.Fatal(err)
	default:
	}
}
