package flow

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/tailer"
)

// Every reading option an operator writes reaches the tailer.
func TestTailerOptionsCarryTheReadingKeys(t *testing.T) {
	cfg, err := config.Parse("test.yaml", []byte(`
flows:
  - name: t
    paths: ["/var/log/*.log"]
    discard: {}
    max_line_bytes: 64KiB
    close_inactive: 2m
    partial_line_timeout: 750ms
    skip_header_lines: 1
    truncated_record_terminator: " [cut]"
    follow_symlinks: true
    multiline: {start_pattern: '^\S', max_bytes: 128KiB, max_lines: 9, timeout: 3s}
`))
	if err != nil {
		t.Fatal(err)
	}
	o := tailerOptions(cfg.Flows[0], tailer.Metrics{}, nil, nil, false, false)
	if o.MaxLineBytes != 64<<10 || o.CloseInactive != 2*time.Minute || o.PartialLineTimeout != 750*time.Millisecond ||
		o.SkipHeaderLines != 1 || o.TruncatedTerminator != " [cut]" || o.MultilineMaxBytes != 128<<10 ||
		o.MultilineMaxLines != 9 || o.MultilineTimeout != 3*time.Second || o.Multiline == nil || !o.FollowSymlinks {
		t.Fatalf("options %+v", o)
	}
}

// The tailer's line limits are what fits a record when that is less than the configured
// ones (so the tailer's cut, with the terminator, is the only one), and the configured ones
// otherwise.
func TestTailerLineLimitsFitARecord(t *testing.T) {
	cfg, err := config.Parse("test.yaml", []byte(`
flows:
  - name: t
    paths: ["/var/log/*.log"]
    discard: {}
    multiline: {start_pattern: '^\S'}
`))
	if err != nil {
		t.Fatal(err)
	}
	o := tailerOptions(cfg.Flows[0], tailer.Metrics{}, nil, nil, false, false)
	fitLines(&o, 1000)
	if o.MaxLineBytes != 1000 || o.MultilineMaxBytes != 1000 {
		t.Errorf("limits %d, %d; want both 1000 (what fits a record)", o.MaxLineBytes, o.MultilineMaxBytes)
	}
	o = tailerOptions(cfg.Flows[0], tailer.Metrics{}, nil, nil, false, false)
	fitLines(&o, 10<<20)
	if o.MaxLineBytes != int(config.DefaultMaxLineBytes) || o.MultilineMaxBytes != int(config.DefaultMaxLineBytes) {
		t.Errorf("limits %d, %d; want both max_line_bytes", o.MaxLineBytes, o.MultilineMaxBytes)
	}
}

// Links found by wildcards are not followed unless the operator says so.
func TestFollowSymlinksIsOffByDefault(t *testing.T) {
	cfg, err := config.Parse("test.yaml", []byte(`
flows:
  - name: t
    paths: ["/var/log/*.log"]
    discard: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	if o := tailerOptions(cfg.Flows[0], tailer.Metrics{}, nil, nil, false, false); o.FollowSymlinks {
		t.Fatal("follow_symlinks on by default")
	}
}

// The positions file keeps each file's tail print, taken from the file at its offset, so a
// file rewritten with the same start while the agent is stopped is noticed at the next start.
func TestPositionsKeepTheTailPrint(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "a.log")
	if err := os.WriteFile(log, []byte("one\ntwo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(log)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	id := tailer.FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}
	snap := map[tailer.FileID]position{id: {ID: id, Path: log, Offset: 4}}
	withTails(snap, map[tailer.FileID]position{})
	want := tailer.TailPrint(log, id, 4)
	if want.Len != 4 || snap[id].Tail != want {
		t.Fatalf("tail %+v, want %+v", snap[id].Tail, want)
	}
	path := filepath.Join(dir, "positions.json")
	if err := savePositions(path, 1, snap, nil, nil); err != nil {
		t.Fatal(err)
	}
	pf, _, err := loadPositions(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := pf.Files[0].position(); got != snap[id] {
		t.Fatalf("loaded %+v, saved %+v", got, snap[id])
	}
}
