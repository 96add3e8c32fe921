package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// TestReloadRemovingFlowKeepsItsSpool: a flow whose stream does not exist holds records in
// its spool; a SIGHUP reload removes it from the configuration. The agent warns about the
// unshipped records once (with what to do), exports kinship_orphan_spool_bytes, keeps the
// spool on disk, and `kinship status` still lists it; the global spool bound is exported.
func TestReloadRemovingFlowKeepsItsSpool(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "ok", 1)
	dir := t.TempDir()
	flowYAML := func(name, stream string) string {
		d := filepath.Join(dir, "logs", name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("  - {name: %s, paths: [\"%s/*.log\"], kinesis: {stream: %s}, batch: {max_age: 100ms}}\n", name, d, stream)
	}
	listen := freePort(t)
	header := fmt.Sprintf("state_dir: %s/state\naws: {region: us-east-1, endpoint: %s}\nmetrics: {listen: %q}\nspool: {max_bytes: 64MiB}\nflows:\n", dir, endpoint, listen)
	gone := flowYAML("gone", "no-such-stream")
	ok := flowYAML("ok", "ok")
	cfg := writeConfig(t, dir, header+ok+gone)
	w := newWriter(t, filepath.Join(dir, "logs", "gone"), 1)
	w.write(t, 500)

	a := startAgent(t, endpoint, "run", "--config", cfg)
	waitStatus(t, cfg, "the gone flow to hold records", func(st statusJSON) bool {
		for _, f := range st.Flows {
			if f.Name == "gone" && f.Spool.UnackedFrames > 0 {
				return true
			}
		}
		return false
	})
	writeConfig(t, dir, header+ok)
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	a.waitLog(t, "configuration reloaded")
	a.waitLog(t, "still has unshipped records")
	l := a.log()
	for _, want := range []string{"flow=gone", "restore the flow to ship them", "delete its directory"} {
		if !strings.Contains(l, want) {
			t.Errorf("the orphan warning lacks %q:\n%s", want, l)
		}
	}
	resp, err := http.Get("http://" + listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, want := range []string{`kinship_orphan_spool_bytes{flow="gone"}`, "kinship_spool_global_bytes ", "kinship_spool_global_max_bytes 6.7108864e+07"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.wait(t, time.Minute); err != nil {
		t.Fatalf("kinship run: %v", err)
	}
	found := false
	for _, f := range status(t, cfg).Flows {
		if f.Name == "gone" {
			found = true
			if f.Configured || f.Spool.UnackedFrames == 0 {
				t.Errorf("status of the removed flow: configured %v, %d unacked frames; want removed, records kept", f.Configured, f.Spool.UnackedFrames)
			}
		}
	}
	if !found {
		t.Error("status no longer lists the removed flow")
	}
}
