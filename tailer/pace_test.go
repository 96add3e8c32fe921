package tailer

import (
	"fmt"
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
// write(2), fast, is read in one pass per pace once the tailer has seen a few of them come
// fast, not in one pass per write.
func TestWritesFasterThanThePaceAreReadTogether(t *testing.T) {
	const pace = time.Second
	path, sink, got, stop := pacedTailer(t, pace)
	lines := make([]string, 20)
	for i := range lines {
		lines[i] = fmt.Sprintf("b%d", i)
		appendFile(t, path, lines[i]+"\n")
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, "every line", func() bool { return sink.count() == 1+len(lines) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Two or three fast gaps turn pacing on; then the rest waits for the pace and comes
	// together (a pass splits only if the writer stalls for most of a second).
	if sink.batches > 6 {
		t.Errorf("%d lines written 5 ms apart came in %d batches besides the first; want them read together", len(lines), sink.batches-1)
	}
	aAt, _ := got.of("a")
	if last, _ := got.of(lines[len(lines)-1]); last.Sub(aAt) < pace*8/10 {
		t.Errorf("the last line came %v after the first pass, written ~100 ms after it: not paced (pace %v)", last.Sub(aAt), pace)
	}
}

// TestAModerateRateIsNotPaced: pacing costs a timer wake-up per pass, so a file written less
// often than a sixth of the pace is read at once, every time (latency at low and moderate
// rates does not move).
func TestAModerateRateIsNotPaced(t *testing.T) {
	const pace = time.Second // long, so that a loaded machine's stall is not taken for the pace
	path, _, got, _ := pacedTailer(t, pace)
	for i := range 4 {
		time.Sleep(pace * 4 / 10)
		line := fmt.Sprintf("c%d", i)
		written := time.Now()
		appendFile(t, path, line+"\n")
		waitFor(t, line, func() bool { _, ok := got.of(line); return ok })
		if at, _ := got.of(line); at.Sub(written) >= pace*3/10 {
			t.Errorf("a line written %v after the previous one took %v to arrive; want it read at once", pace*4/10, at.Sub(written))
		}
	}
}

// TestStopIsNotDelayedByThePace: a tailer waiting out its pace stops at once, and the line it
// was waiting to read stays unread (its position was never passed).
func TestStopIsNotDelayedByThePace(t *testing.T) {
	path, sink, got, stop := pacedTailer(t, time.Hour)
	held := ""
	for i := 0; i < 6 && held == ""; i++ { // each line written as soon as the last arrived
		line := fmt.Sprintf("b%d", i)
		appendFile(t, path, line+"\n")
		deadline := time.Now().Add(500 * time.Millisecond)
		for time.Now().Before(deadline) {
			if _, ok := got.of(line); ok {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if _, ok := got.of(line); !ok {
			held = line
		}
	}
	if held == "" {
		t.Fatal("six lines written as fast as they were read never turned pacing on")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.of(held); ok {
		t.Errorf("%s, held for the pace, was read after the stop", held)
	}
	if n := len(sink.linesOf(path)); n < 2 {
		t.Errorf("%d lines read; want those before the pace", n)
	}
}
