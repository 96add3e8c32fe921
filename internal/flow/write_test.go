package flow

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/config"
)

// eachWriteMode runs fn once per spool.write mode, as subtests named after it.
func eachWriteMode(t *testing.T, fn func(t *testing.T, mode string)) {
	t.Helper()
	for _, m := range []string{"always", "backlog"} {
		t.Run(m, func(t *testing.T) { fn(t, m) })
	}
}

// spool.write: backlog with a destination that keeps up: the records are acknowledged before
// the spool's commit, so none is written, yet the positions advance with the acks, and after
// a restart nothing is read again: not even when positions.json was lost (a crash before the
// checkpoint saved it), since the stubs on disk carry the same positions.
func TestPositionsAdvanceWithAcksWhenNothingIsWritten(t *testing.T) {
	logs, state := t.TempDir(), t.TempDir()
	var sb strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&sb, "%d %s\n", i, strings.Repeat("x", 100+i%50))
	}
	log := filepath.Join(logs, "a.log")
	if err := os.WriteFile(log, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("test.yaml", fmt.Appendf(nil, `flows:
  - {name: a, paths: [%q], start_at: beginning, discard: {}, batch: {max_bytes: 64KiB, max_age: 10ms},
     spool: {fsync_interval: 1s, compression: none, write: backlog}}
`, log))
	if err != nil {
		t.Fatal(err)
	}
	dest := &collectingDestination{seen: map[string]int{}}
	deps := Deps{Dir: state, CheckpointInterval: 10 * time.Millisecond, Destination: dest}
	covered := func() bool {
		pf, _, err := loadPositions(filepath.Join(state, "positions.json"))
		return err == nil && len(pf.Files) == 1 && pf.Files[0].Offset == int64(sb.Len())
	}
	var delivered uint64
	runUntil(t, cfg.Flows[0], deps, "every line acknowledged and its position saved", func(f *Flow) bool {
		n, _ := dest.count()
		delivered = f.spool.Stats().Delivered
		return n == 5000 && covered()
	})
	var segBytes int64
	segs, _ := filepath.Glob(filepath.Join(state, "spool", "*.seg"))
	for _, p := range segs {
		if fi, err := os.Stat(p); err == nil {
			segBytes += fi.Size()
		}
	}
	// The records are ~650 KB; the stubs ~100 bytes each. A record the shipper had not
	// acknowledged at a commit is written, so some may be (the long commit interval keeps
	// that rare even on a loaded machine).
	if delivered == 0 || segBytes > int64(sb.Len())/4 {
		t.Fatalf("%d frames delivered unwritten, segments hold %d bytes of %d read: the records were written", delivered, segBytes, sb.Len())
	}
	for _, lost := range []bool{false, true} {
		if lost {
			if err := os.Remove(filepath.Join(state, "positions.json")); err != nil {
				t.Fatal(err)
			}
		}
		runUntil(t, cfg.Flows[0], deps, "the restart settled", func(f *Flow) bool {
			pos, ok := f.pos.position(f.pos.files()[0].ID)
			return ok && pos.Offset == int64(sb.Len())
		})
		if _, dups := dest.count(); dups != 0 {
			t.Fatalf("positions.json lost: %v; %d lines sent again after a restart", lost, dups)
		}
	}
}
