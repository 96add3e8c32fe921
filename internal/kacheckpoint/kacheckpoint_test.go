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

func TestPlanFlow(t *testing.T) {
	dir := t.TempDir()
	fc := config.Flow{Name: "app", Paths: []string{filepath.Join(dir, "*.log*")}, Exclude: []string{"*.gz"},
		Kinesis: &config.Kinesis{Stream: "s"}}
	id := "kinesis:s:" + filepath.Join(dir, "*.log*")
	p := func(name string) string { return filepath.Join(dir, name) }

	write(t, p("same.log"), "0123456789\nabc\n")
	same := cp(t, id, p("same.log"), 11)

	// Rotated while no agent ran: the checkpointed file is now moved.log.1, and moved.log is new.
	write(t, p("moved.log"), "old line 1\nold line 2\n")
	moved := cp(t, id, p("moved.log"), 11)
	if err := os.Rename(p("moved.log"), p("moved.log.1")); err != nil {
		t.Fatal(err)
	}
	write(t, p("moved.log"), "new line\n")

	// The checkpointed file was deleted and another took its path and inode number is gone.
	write(t, p("replaced.log"), "x\n")
	replaced := cp(t, id, p("replaced.log"), 2)
	replaced.FileID = "(dev=1,ino=1)" // an identity no file has

	write(t, p("short.log"), "abc\n")
	short := cp(t, id, p("short.log"), 4)
	short.Offset = 400 // truncated since

	write(t, p("old.log"), "abc\n")
	old := cp(t, id, p("old.log"), 4)
	old.LastUpdated = time.Now().Add(-8 * 24 * time.Hour)

	bad := cp(t, id, p("same.log"), 3)
	bad.Path, bad.FileID = p("bad.log"), "inode 12"

	// An older row for the file same.log is now: the newer row counts.
	older := cp(t, id, p("same.log"), 3)
	older.Path, older.LastUpdated = p("before-rename.log"), time.Now().Add(-time.Hour)

	gone := Checkpoint{Flow: id, Path: p("gone.log"), FileID: "(dev=1,ino=2)", Offset: 5, LastUpdated: time.Now()}
	otherFlow := cp(t, "kinesis:other:"+filepath.Join(dir, "*.log*"), p("same.log"), 1)

	write(t, p("untouched.log"), "never checkpointed\n")

	plan := PlanFlow(fc, []Checkpoint{same, moved, replaced, short, old, bad, older, gone, otherFlow}, time.Now(), 7*24*time.Hour)

	got := map[string]string{}
	for _, f := range plan.Files {
		key := f.RowPath
		switch {
		case f.Successor:
			key += " successor"
		case f.Imported:
			key += " -> " + f.Path
		}
		if f.Imported {
			got[key] = "imported"
		} else {
			got[key] = f.Skip
		}
	}
	want := map[string]string{
		p("same.log") + " -> " + p("same.log"):     "imported",
		p("moved.log") + " -> " + p("moved.log.1"): "imported",
		p("moved.log") + " successor":              "imported",
		p("replaced.log"):                          SkipReplaced,
		p("replaced.log") + " successor":           "imported",
		p("short.log"):                             SkipBeyondEnd,
		p("old.log"):                               SkipStale,
		p("bad.log"):                               SkipBadFileID,
		p("before-rename.log"):                     SkipSuperseded,
		p("gone.log"):                              SkipGone,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plan\n%v\nwant\n%v", got, want)
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
	wantOffsets := map[string]int64{p("same.log"): 11, p("moved.log.1"): 11, p("moved.log"): 0, p("replaced.log"): 0}
	if !reflect.DeepEqual(offsets, wantOffsets) {
		t.Fatalf("positions %v, want %v", offsets, wantOffsets)
	}
	wantSkipped := map[string]int{SkipReplaced: 1, SkipBeyondEnd: 1, SkipStale: 1, SkipBadFileID: 1, SkipSuperseded: 1, SkipGone: 1}
	if skipped := plan.Skipped(); !reflect.DeepEqual(skipped, wantSkipped) {
		t.Fatalf("skipped %v, want %v", skipped, wantSkipped)
	}

	cfg := &config.Config{Flows: []config.Flow{fc}}
	if un := Unmatched(cfg, []Checkpoint{same, otherFlow}); len(un) != 1 || un[0].Flow != otherFlow.Flow {
		t.Fatalf("unmatched %+v", un)
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
