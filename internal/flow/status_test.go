package flow

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/shipper"
	"github.com/kinship-agent/kinship/tailer"
)

type fakeDest struct {
	put func(recs []shipper.Record) ([]error, error)
}

func (d fakeDest) Put(_ context.Context, recs []shipper.Record) ([]error, error) { return d.put(recs) }
func (d fakeDest) Limits() shipper.Limits                                        { return shipper.Limits{}.WithDefaults() }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An operator's view of a flow whose destination fails, then recovers: /healthz turns
// unhealthy only while data waits and nothing ships, and status names the error; once the
// agent stopped, the state on disk says everything was read and shipped.
func TestHealthAndStatusFollowTheDestination(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o700); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(logs, "a.log")
	if err := os.WriteFile(logFile, []byte(strings.Repeat("a line\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("test.yaml", []byte(`
flows:
  - name: t
    paths: ["`+logs+`/*.log"]
    discard: {}
    batch: {max_age: 10ms}
    poll_interval: 100ms
`))
	if err != nil {
		t.Fatal(err)
	}
	var failing atomic.Bool
	failing.Store(true)
	dst := fakeDest{put: func(recs []shipper.Record) ([]error, error) {
		if failing.Load() {
			return nil, errors.New("service unavailable: injected")
		}
		return nil, nil
	}}
	state := filepath.Join(dir, "state")
	m := metrics.New(prometheus.NewRegistry()).Flow("t")
	f, err := New(cfg.Flows[0], Deps{Dir: state, Destination: dst, Metrics: m, CheckpointInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, false) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "the injected error in status", func() bool { return f.Status().LastError != "" })
	st := f.Status()
	if st.Spool.UnackedFrames == 0 || st.Spool.UnackedBytes == 0 || st.LastSend != nil || !strings.Contains(st.LastError, "injected") {
		t.Errorf("status while failing = %+v", st)
	}
	if got := testutil.ToFloat64(m.SpoolUnackedBytes); got == 0 {
		t.Errorf("kinship_spool_unacked_bytes = 0 with %d bytes waiting", st.Spool.UnackedBytes)
	}
	if ok, reason := f.Healthy(time.Now(), time.Hour); !ok {
		t.Errorf("unhealthy before unhealthy_after passed: %s", reason)
	}
	ok, reason := f.Healthy(time.Now().Add(2*time.Minute), time.Minute)
	if ok || !strings.Contains(reason, "injected") || !strings.Contains(reason, "flow t") {
		t.Errorf("healthy = %v (%q) with data stuck for longer than unhealthy_after", ok, reason)
	}
	// While the agent runs, status from the state files sees the same backlog without the lock.
	// (With spool.write: backlog the frames reach the disk at the next group commit.)
	waitFor(t, "the backlog on disk", func() bool {
		disk := ReadStatus("t", state)
		return disk.Error == "" && disk.Spool.UnackedFrames > 0
	})

	failing.Store(false)
	waitFor(t, "the backlog to ship", func() bool {
		st := f.Status()
		return st.Spool.UnackedFrames == 0 && st.LastSend != nil
	})
	if st := f.Status(); st.Spool.UnackedBytes != 0 {
		t.Errorf("unacked bytes with an empty backlog = %d", st.Spool.UnackedBytes)
	}
	// What kinship_spool_unacked_bytes is for: the spool's segment still holds the shipped
	// frames, the flow waits for nothing.
	if unacked, held := testutil.ToFloat64(m.SpoolUnackedBytes), testutil.ToFloat64(m.SpoolBytes); unacked != 0 || held == 0 {
		t.Errorf("everything shipped: kinship_spool_unacked_bytes = %v, kinship_spool_bytes = %v", unacked, held)
	}
	if ok, reason := f.Healthy(time.Now().Add(time.Hour), time.Minute); !ok {
		t.Errorf("unhealthy with an empty spool: %s", reason)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil
	disk := ReadStatus("t", state)
	if disk.Error != "" || len(disk.Files) != 1 {
		t.Fatalf("ReadStatus after stop = %+v", disk)
	}
	if fs := disk.Files[0]; fs.Path != logFile || fs.Position != 700 || fs.Size != 700 || fs.LagBytes != 0 {
		t.Errorf("file status = %+v, want read to its end (700 bytes)", fs)
	}
	if disk.Spool.UnackedFrames != 0 || disk.Spool.UnackedBytes != 0 {
		t.Errorf("spool backlog after everything shipped = %+v", disk.Spool)
	}
	// More written after the stop shows up as lag.
	fh, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fh.WriteString("late\n")
	_ = fh.Close()
	if fs := ReadStatus("t", state).Files[0]; fs.LagBytes != 5 {
		t.Errorf("lag after 5 more bytes = %+v", fs)
	}
}

// A /status poll must not stall the pipeline: with many files, or one on a hung network
// mount, stat takes long, and lines keep flowing meanwhile.
func TestStatusDoesNotBlockRecords(t *testing.T) {
	f := testFlow(t, t.TempDir())
	sk := sink{f: f}
	for i := uint32(1); i <= 100; i++ {
		sk.Open(&tailer.Source{Index: i, ID: tailer.FileID{Dev: 1, Ino: uint64(i)}, Path: fmt.Sprintf("/var/log/%d.log", i)}, 0)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.stat = func(string) (os.FileInfo, error) {
		once.Do(func() { close(entered) })
		<-release
		return nil, os.ErrNotExist
	}
	statusDone := make(chan Status, 1)
	go func() { statusDone <- f.Status() }()
	<-entered

	recordsDone := make(chan error, 1)
	go func() {
		sk.Open(&tailer.Source{Index: 101, ID: tailer.FileID{Dev: 1, Ino: 101}, Path: "/var/log/new.log"}, 0)
		recordsDone <- output{f: f, ctx: context.Background()}.Put(&aggregator.Record{PartitionKey: "k", Data: []byte("line"),
			UserRecords: 1, Marks: []aggregator.Mark{{Source: 1, Offset: 5}, {Source: 101, Offset: 5}}})
	}()
	select {
	case err := <-recordsDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("a record waited for a Status call stuck in stat")
	}
	close(release)
	if st := <-statusDone; len(st.Files) < 100 {
		t.Errorf("status lists %d files, want the 100 tracked", len(st.Files))
	}
}

// /status reports the bytes waiting for the destination, as `kinship status` does from
// disk: before and after a restart, and none once everything is acknowledged.
func TestStatusCountsUnackedBytes(t *testing.T) {
	dir := t.TempDir()
	f := testFlow(t, dir)
	sink{f: f}.Open(realSource(t, filepath.Join(t.TempDir(), "a.log")), 0)
	out := output{f: f, ctx: context.Background()}
	for _, off := range []int64{10, 20, 30} {
		if err := out.Put(&aggregator.Record{PartitionKey: "k", Data: []byte(strings.Repeat("x", 1000)), UserRecords: 1,
			Marks: []aggregator.Mark{{Source: 1, Offset: off}}}); err != nil {
			t.Fatal(err)
		}
	}
	live := f.Status().Spool.UnackedBytes
	if live < 3000 {
		t.Fatalf("unacked bytes with 3 records of 1000 bytes waiting = %d", live)
	}
	if err := f.spool.Close(); err != nil {
		t.Fatal(err)
	}

	g := testFlow(t, dir)
	if got := g.Status().Spool.UnackedBytes; got != live {
		t.Fatalf("unacked bytes after a restart = %d, want %d as before it", got, live)
	}
	src := spoolSource{g}
	it, err := src.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Ack(it.Seq); err != nil {
		t.Fatal(err)
	}
	if got := g.Status().Spool.UnackedBytes; got <= 0 || got >= live {
		t.Errorf("unacked bytes with 2 of 3 records waiting = %d, want between 0 and %d", got, live)
	}
	for range 2 {
		it, err := src.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Ack(it.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if got := g.Status().Spool.UnackedBytes; got != 0 {
		t.Errorf("unacked bytes once everything is acknowledged = %d", got)
	}
}
