package kacheckpoint

import (
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/kacheckpoint/kacheckpointtest"
	"github.com/kinship-agent/kinship/tailer"
)

func TestParseFileID(t *testing.T) {
	for in, want := range map[string]tailer.FileID{
		"(dev=803,ino=131075)":           {Dev: 0x803, Ino: 131075},
		"(dev=fd01,ino=2)":               {Dev: 0xfd01, Ino: 2},
		"(dev=ffffffffffffffff,ino=-1)":  {Dev: ^uint64(0), Ino: ^uint64(0)}, // Long.toHexString and a signed long
		"(dev=10300000000,ino=12345678)": {Dev: 0x10300000000, Ino: 12345678},
	} {
		got, err := ParseFileID(in)
		if err != nil || got != want {
			t.Errorf("ParseFileID(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "(dev=803)", "(ino=1,dev=2)", "(dev=xyz,ino=1)", "(dev=803,ino=1", "803:1"} {
		if _, err := ParseFileID(bad); err == nil {
			t.Errorf("ParseFileID(%q) accepted", bad)
		}
	}
}

// The flow ids are the Kinesis Agent's for the flows an agent.json defines, through
// kinship's own translation of that agent.json.
func TestAgentFlowIDsFromAgentJSON(t *testing.T) {
	cfg, err := config.Parse("agent.json", []byte(`{"flows": [
  {"filePattern": "/var/log/app/*.log", "kinesisStream": "app"},
  {"filePattern": "/var/log//web[1]/access.log*", "deliveryStream": "web"},
  {"filePattern": "/app.log", "kinesisStream": "arn:aws:kinesis:us-east-1:1:stream/x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, fc := range cfg.Flows {
		got = append(got, AgentFlowIDs(fc)...)
	}
	want := []string{"kinesis:app:/var/log/app/*.log", "fh:web:/var/log/web[1]/access.log*",
		"kinesis:arn:aws:kinesis:us-east-1:1:stream/x://app.log"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("flow ids\n%q\nwant\n%q", got, want)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func cp(t *testing.T, flow, path string, offset int64) Checkpoint {
	return Checkpoint(kacheckpointtest.Checkpoint(t, flow, path, offset))
}

func touch(t *testing.T, path string, mtime time.Time) {
	t.Helper()
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestPlanFlow(t *testing.T) {
	dir := t.TempDir()
	fc := config.Flow{Name: "app", Paths: []string{filepath.Join(dir, "*.log*")}, Exclude: []string{"*.gz"},
		Kinesis: &config.Kinesis{Stream: "s"}}
	id := "kinesis:s:" + filepath.Join(dir, "*.log*")
	p := func(name string) string { return filepath.Join(dir, name) }
	now := time.Now()
	t0 := now.Add(-time.Hour).Truncate(time.Second) // the newest checkpointed file's last write
	at := func(c Checkpoint, ago time.Duration) Checkpoint {
		c.LastUpdated = now.Add(-ago)
		return c
	}

	write(t, p("same.log"), "0123456789\nabc\n")
	same := at(cp(t, id, p("same.log"), 11), 2*time.Minute)

	// The newest checkpoint: its file was renamed moved.log.1 by a rotation while no agent ran,
	// which created a new moved.log.
	write(t, p("moved.log"), "old line 1\nold line 2\n")
	moved := at(cp(t, id, p("moved.log"), 11), time.Minute)
	if err := os.Rename(p("moved.log"), p("moved.log.1")); err != nil {
		t.Fatal(err)
	}
	touch(t, p("moved.log.1"), t0)
	write(t, p("moved.log"), "new line\n")
	touch(t, p("moved.log"), t0.Add(10*time.Second))

	// The checkpointed file is gone and another is at its path.
	write(t, p("replaced.log"), "x\n")
	replaced := at(cp(t, id, p("replaced.log"), 2), 3*time.Minute)
	replaced.FileID = "(dev=1,ino=1)" // an identity no file has
	touch(t, p("replaced.log"), t0.Add(20*time.Second))

	write(t, p("short.log"), "abc\n")
	short := at(cp(t, id, p("short.log"), 4), 4*time.Minute)
	short.Offset = 400 // truncated since
	touch(t, p("short.log"), t0.Add(-time.Minute))

	// copytruncate since the checkpoint: same inode, shorter than then, written again.
	write(t, p("copied.log"), "new content after the truncation\n")
	copied := at(cp(t, id, p("copied.log"), 5), 7*time.Minute)
	copied.Size = 1000
	touch(t, p("copied.log"), t0.Add(30*time.Second))

	write(t, p("old.log"), "abc\n")
	old := at(cp(t, id, p("old.log"), 4), 8*24*time.Hour)
	touch(t, p("old.log"), t0.Add(-8*24*time.Hour))

	bad := at(cp(t, id, p("same.log"), 3), 5*time.Minute)
	bad.Path, bad.FileID = p("bad.log"), "inode 12"

	// An older row for the file same.log is now: the newer row counts.
	older := at(cp(t, id, p("same.log"), 3), time.Hour)
	older.Path = p("before-rename.log")

	gone := Checkpoint{Flow: id, Path: p("gone.log"), FileID: "(dev=1,ino=2)", Offset: 5, LastUpdated: now.Add(-6 * time.Minute)}
	otherFlow := cp(t, "kinesis:other:"+filepath.Join(dir, "*.log*"), p("same.log"), 1)

	write(t, p("finished.log.2"), "rotated before the last checkpoint\n")
	touch(t, p("finished.log.2"), t0.Add(-time.Hour))
	write(t, p("new.log"), "created after the last checkpoint\n")
	touch(t, p("new.log"), t0.Add(time.Second))
	write(t, p("x.gz"), "excluded")

	plan := PlanFlow(fc, []Checkpoint{same, moved, replaced, short, copied, old, bad, older, gone, otherFlow}, now, 7*24*time.Hour)

	got := map[string]string{}
	for _, f := range plan.Files {
		key := f.RowPath
		switch {
		case f.Unread:
			got[key] = "from its start"
		case f.Finished:
			got[key] = "at its end"
		case f.Imported:
			got[key+" -> "+f.Path] = "imported"
		default:
			got[key] = f.Skip
		}
	}
	want := map[string]string{
		p("same.log") + " -> " + p("same.log"):     "imported",
		p("moved.log") + " -> " + p("moved.log.1"): "imported",
		p("moved.log"):         "from its start",
		p("replaced.log"):      "from its start", // and its row skipped:
		p("short.log"):         "at its end",     // likewise
		p("old.log"):           "at its end",     // likewise
		p("bad.log"):           SkipBadFileID,
		p("before-rename.log"): SkipSuperseded,
		p("gone.log"):          SkipGone,
		p("finished.log.2"):    "at its end",
		p("copied.log"):        "from its start", // and its row skipped
		p("new.log"):           "from its start",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plan\n%v\nwant\n%v", got, want)
	}
	wantSkipped := map[string]int{SkipReplaced: 1, SkipBeyondEnd: 1, SkipTruncated: 1, SkipStale: 1, SkipBadFileID: 1, SkipSuperseded: 1, SkipGone: 1}
	if skipped := plan.Skipped(); !reflect.DeepEqual(skipped, wantSkipped) {
		t.Fatalf("skipped %v, want %v", skipped, wantSkipped)
	}

	offsets := map[string]int64{}
	for _, pos := range plan.Positions {
		offsets[pos.Path] = pos.Offset
		fi, err := os.Stat(pos.Path)
		if err != nil {
			t.Fatal(err)
		}
		if want := fileIDOf(fi); pos.ID != want {
			t.Errorf("%s: id %+v, want %+v", pos.Path, pos.ID, want)
		}
		if pos.Fingerprint.Len == 0 {
			t.Errorf("%s: no fingerprint", pos.Path)
		}
	}
	wantOffsets := map[string]int64{p("same.log"): 11, p("moved.log.1"): 11, p("moved.log"): 0, p("replaced.log"): 0,
		p("short.log"): 4, p("old.log"): 4, p("finished.log.2"): 35, p("new.log"): 0, p("copied.log"): 0}
	if !reflect.DeepEqual(offsets, wantOffsets) {
		t.Fatalf("positions %v, want %v", offsets, wantOffsets)
	}

	cfg := &config.Config{Flows: []config.Flow{fc}}
	if un := Unmatched(cfg, []Checkpoint{same, otherFlow}); len(un) != 1 || un[0].Flow != otherFlow.Flow {
		t.Fatalf("unmatched %+v", un)
	}

	// Only stale checkpoints: nothing is placed, start_at decides.
	stale := PlanFlow(fc, []Checkpoint{old}, now, 7*24*time.Hour)
	if len(stale.Positions) != 0 || len(stale.Files) != 1 {
		t.Fatalf("stale only: %+v", stale)
	}
	// Written before the first start (the command), the plan places every file as start_at.
	fc.StartAt = "end"
	stale.AddStartAt(fc)
	if len(stale.Positions) != 9 {
		t.Fatalf("start_at end placed %d files, want 9", len(stale.Positions))
	}
	for _, pos := range stale.Positions {
		if fi, _ := os.Stat(pos.Path); pos.Offset != fi.Size() {
			t.Errorf("%s at %d, want its end %d", pos.Path, pos.Offset, fi.Size())
		}
	}
}

// A flow without checkpoints, or of a destination the Kinesis Agent does not have, imports
// nothing.
func TestPlanFlowNothing(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.log"), "x\n")
	row := cp(t, "kinesis:s:"+filepath.Join(dir, "*.log"), filepath.Join(dir, "a.log"), 2)
	for _, fc := range []config.Flow{
		{Name: "http", Paths: []string{filepath.Join(dir, "*.log")}, HTTP: &config.HTTP{}},
		{Name: "other-stream", Paths: []string{filepath.Join(dir, "*.log")}, Kinesis: &config.Kinesis{Stream: "t"}},
	} {
		if plan := PlanFlow(fc, []Checkpoint{row}, time.Now(), 0); len(plan.Files) != 0 || len(plan.Positions) != 0 {
			t.Errorf("%s: %+v", fc.Name, plan)
		}
	}
}

func fileIDOf(fi os.FileInfo) tailer.FileID {
	st := fi.Sys().(*syscall.Stat_t)
	return tailer.FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}
}
