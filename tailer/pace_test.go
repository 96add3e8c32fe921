package tailer

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// arrivals records when each line reached the sink.
type arrivals struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (a *arrivals) onLine(_ *Source, line []byte, _ int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, seen := a.at[string(line)]; !seen {
		a.at[string(line)] = time.Now()
	}
	return nil
}

func (a *arrivals) of(line string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.at[line]
	return at, ok
}

// pacedTailer tails dir/app.log, which holds "a\n", with the given pace, and waits until
// "a" arrived (the first pass is never delayed).
func pacedTailer(t *testing.T, pace time.Duration) (path string, sink *batchSink, got *arrivals, stop func() error) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got = &arrivals{at: map[string]time.Time{}}
	sink = &batchSink{fakeSink: newSink()}
	sink.onLine = got.onLine
	stop = start(t, Options{Paths: []string{path}}, sink, func(tl *Tailer) { tl.readPace = pace })
	waitFor(t, "the first line", func() bool { _, ok := got.of("a"); return ok })
	return path, sink, got, stop
}

// TestWritesFasterThanThePaceAreReadTogether: a logger writing each line with its own
// write(2) is read in one pass per pace, not one per write, and the pass after the first
// starts no sooner than the pace allows.
func TestWritesFasterThanThePaceAreReadTogether(t *testing.T) {
	const pace = time.Second
	path, sink, got, stop := pacedTailer(t, pace)
	aAt, _ := got.of("a")
	lines := []string{"b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9"}
	for _, l := range lines {
		appendFile(t, path, l+"\n")
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, "every line", func() bool { return sink.count() == 1+len(lines) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// A pass could split only if the writer stalled for most of a second.
	if sink.batches > 3 {
		t.Errorf("%d lines written 5 ms apart came in %d batches besides the first; want them read together", len(lines), sink.batches-1)
	}
	if b0At, _ := got.of("b0"); b0At.Sub(aAt) < pace*8/10 {
		t.Errorf("the second pass came %v after the first; the pace is %v", b0At.Sub(aAt), pace)
	}
}

// TestALineAfterAQuietSpellIsReadAtOnce: pacing only gathers writes that come fast; a write
// after more than the pace of quiet is not delayed (latency at low rates does not move).
func TestALineAfterAQuietSpellIsReadAtOnce(t *testing.T) {
	const pace = time.Second // long, so that a loaded machine's stall is not taken for the pace
	path, _, got, _ := pacedTailer(t, pace)
	time.Sleep(pace + pace/2)
	written := time.Now()
	appendFile(t, path, "c\n")
	waitFor(t, "the line after the quiet spell", func() bool { _, ok := got.of("c"); return ok })
	if cAt, _ := got.of("c"); cAt.Sub(written) >= pace*3/4 {
		t.Errorf("a line written %v after the last pass took %v to arrive; want it read at once", pace+pace/2, cAt.Sub(written))
	}
}

// TestStopIsNotDelayedByThePace: a tailer waiting out its pace stops at once, and the line it
// was waiting to read stays unread (its position was never passed).
func TestStopIsNotDelayedByThePace(t *testing.T) {
	path, sink, _, stop := pacedTailer(t, time.Hour)
	appendFile(t, path, "b\n")
	time.Sleep(100 * time.Millisecond) // the event is taken, the pass waits for its pace
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := sink.linesOf(path); len(got) != 1 {
		t.Errorf("lines read: %q; want only the one before the pace", got)
	}
}
