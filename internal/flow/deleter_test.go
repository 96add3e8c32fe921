package flow

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/kinship-agent/kinship/shipper"
)

func deleterFlow(t *testing.T, logs string, elsewhere func(string) (bool, string)) *Flow {
	t.Helper()
	return openFlow(t, fmt.Sprintf(`
flows:
  - name: t
    paths: [%q]
    delete_after_shipped: [%q]
    close_inactive: 1m
    discard: {}
    spool: {fsync_interval: 1h}
`, logs+"/*.log", logs+"/app.log*"), Deps{Dir: t.TempDir(), Destination: shipper.Discard{}, ShippedElsewhere: elsewhere})
}

func age(t *testing.T, path string, d time.Duration) {
	t.Helper()
	old := time.Now().Add(-d)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// delete_after_shipped removes a rotated file only once every line is acknowledged, and
// never the live file, a file written to lately, or one another flow has not shipped.
func TestDeleteAfterShippedRemovesOnlyShippedRotatedFiles(t *testing.T) {
	logs := t.TempDir()
	elsewhereOK := true
	f := deleterFlow(t, logs, func(string) (bool, string) { return elsewhereOK, "flow other: unacked" })
	rotated := filepath.Join(logs, "app.log.1")
	src := trackedFile(t, rotated, "one\ntwo\n", 1)
	sink{f: f}.Open(src, 0)
	spoolLines(t, f, 1, 8)
	sink{f: f}.Close(src) // rotated away and read to its end
	live := filepath.Join(logs, "app.log")
	liveSrc := trackedFile(t, live, "three\n", 2)
	sink{f: f}.Open(liveSrc, 0)
	spoolLines(t, f, 2, 6)
	f.checkpoint()
	age(t, rotated, time.Hour)
	age(t, live, time.Hour)

	sweep := func() {
		f.del.rounds = deleteSweepEvery // sweep now, whatever the acks did
		f.deleteShipped(time.Now())
	}
	sweep()
	if !exists(rotated) {
		t.Fatal("deleted before the destination acknowledged its lines")
	}
	ackAll(t, f)
	elsewhereOK = false
	sweep()
	if !exists(rotated) {
		t.Fatal("deleted while another flow reading it has not shipped it")
	}
	elsewhereOK = true
	age(t, rotated, time.Second)
	sweep()
	if !exists(rotated) {
		t.Fatal("deleted though written to within close_inactive")
	}
	age(t, rotated, time.Hour)
	sweep()
	if exists(rotated) {
		t.Fatal("a rotated, shipped, quiet file was kept")
	}
	if !exists(live) {
		t.Fatal("the live file was deleted")
	}
	var m dto.Metric
	if err := f.deps.Metrics.FilesDeleted.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n != 1 {
		t.Errorf("kinship_files_deleted_total = %v, want 1", n)
	}
	// A file the flow never read is not its to delete, shipped or not.
	stranger := filepath.Join(logs, "app.log.2")
	if err := os.WriteFile(stranger, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	age(t, stranger, time.Hour)
	sweep()
	if !exists(stranger) {
		t.Fatal("deleted a file the flow never read")
	}
}
