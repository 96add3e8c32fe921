package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/kacheckpoint/kacheckpointtest"
	"github.com/kinship-agent/kinship/internal/testenv/cloudwatchtest"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// TestSwitchFromTheKinesisAgent is a host changing agents: the Kinesis Agent sent the first
// 600 lines of app.log and checkpointed them, then stopped; while no agent ran, logrotate
// renamed app.log to app.log.1 and the application wrote 200 lines to a new app.log. kinship
// imports the checkpoints and runs: the stream gets the rest of app.log.1 and all of the new
// app.log, nothing the Kinesis Agent sent, nothing of the older app.log.2 it had finished,
// whatever start_at says; and CloudWatch gets the Kinesis Agent's metrics for what was sent.
func TestSwitchFromTheKinesisAgent(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "switch", 2)
	cws := cloudwatchtest.Start(t)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	appLog := filepath.Join(logs, "app.log")
	lines := func(format string, from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, format+"\n", i)
		}
		return b.String()
	}
	writeFile := func(path, s string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	writeFile(filepath.Join(logs, "app.log.2"), lines("finished %d", 0, 100), now.Add(-time.Hour))
	sent := lines("app %d", 0, 600)
	writeFile(appLog, sent+lines("app %d", 600, 1000), now.Add(-time.Minute))
	db := filepath.Join(dir, "checkpoints")
	kacheckpointtest.Write(t, db, "", kacheckpointtest.Checkpoint(t, "kinesis:switch:"+logs+"/app.log*", appLog, int64(len(sent))))
	if err := os.Rename(appLog, appLog+".1"); err != nil {
		t.Fatal(err)
	}
	writeFile(appLog, lines("new %d", 0, 200), now)

	cfg := writeConfig(t, dir, fmt.Sprintf(`state_dir: %s/state
aws: {region: us-east-1, endpoint: %s}
metrics:
  cloudwatch: {enabled: true, namespace: AWSKinesisAgent, endpoint: %s, interval: 1h}
flows:
  - name: app
    paths: ["%s/app.log*"]
    start_at: beginning
    kinesis: {stream: switch}
`, dir, endpoint, cws.URL, logs))

	imp := exec.Command(kinshipBin, "import-checkpoints", "--config", cfg, "--from", db)
	imp.Env = agentEnv(endpoint)
	out, err := imp.CombinedOutput()
	if err != nil {
		t.Fatalf("import-checkpoints: %v\n%s", err, out)
	}
	for _, want := range []string{"imported (checkpointed as " + appLog + ", renamed since)", "read from its start", "at its end", "flow app: 3 positions saved"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("import-checkpoints output lacks %q:\n%s", want, out)
		}
	}

	a := startAgent(t, endpoint, "run", "--config", cfg, "--once")
	if err := a.wait(t, 2*time.Minute); err != nil {
		t.Fatalf("kinship run --once: %v\n%s", err, a.stderr)
	}
	sc := readStream(t, endpoint, "switch")
	var got []string
	for _, l := range sc.lines {
		got = append(got, string(l))
	}
	sort.Strings(got)
	want := strings.Split(strings.TrimSuffix(lines("app %d", 600, 1000)+lines("new %d", 0, 200), "\n"), "\n")
	sort.Strings(want)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("the stream has %d lines, want the %d the Kinesis Agent had not sent (first got: %q)", len(got), len(want), got[:min(len(got), 5)])
	}

	sums := cws.Sums()
	if records := sums["RecordsSent{Destination=KinesisStream:switch}"]; records != float64(sc.records) {
		t.Errorf("CloudWatch RecordsSent %g, the stream has %d records; published %v", records, sc.records, sums)
	}
	if errs := sums["ServiceErrors{Destination=KinesisStream:switch}"]; errs != 0 {
		t.Errorf("ServiceErrors %g", errs)
	}
}
