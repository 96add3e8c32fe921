package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// A Kinesis flow exports its stream's headroom while it runs: the open shard count (from
// ListShards, for random keys), the busiest shard's utilization and per-shard rates, so an
// operator sees a host nearing a shard's limits before the fleet is throttled.
func TestKinesisFlowExportsStreamHeadroom(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "room", 3)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "app.log")
	var b strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&b, "line %d %s\n", i, strings.Repeat("x", 100))
	}
	if err := os.WriteFile(logPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := freePort(t)
	cfg := writeConfig(t, dir, fmt.Sprintf(`state_dir: %s/state
aws: {region: us-east-1, endpoint: %s}
metrics: {listen: %q}
flows:
  - name: app
    paths: [%q]
    start_at: beginning
    kinesis: {stream: room}
`, dir, endpoint, listen, logPath))
	a := startAgent(t, endpoint, "run", "--config", cfg)
	deadline := time.Now().Add(30 * time.Second)
	var page string
	for time.Now().Before(deadline) {
		page = scrape(t, listen)
		if strings.Contains(page, `kinship_stream_open_shards{flow="app",stream="room"} 3`) &&
			strings.Contains(page, `kinship_stream_write_utilization{flow="app",stream="room"}`) &&
			strings.Contains(page, `kinship_shard_write_bytes_per_second{flow="app",shard="shardId-`) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(page, `kinship_stream_open_shards{flow="app",stream="room"} 3`) ||
		!strings.Contains(page, `kinship_shard_write_bytes_per_second{flow="app",shard="shardId-`) {
		t.Fatalf("no stream headroom on /metrics after 30 s:\n%s", grepLines(page, "kinship_stream_", "kinship_shard_"))
	}
	if v := metricValue(t, listen, "kinship_stream_write_utilization"); v <= 0 {
		t.Errorf("utilization %v after sending, want above 0", v)
	}
	_ = a
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func grepLines(s string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}
