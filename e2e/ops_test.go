package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/testenv/imdstest"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// statusJSON is the part of `kinship status --json` the tests read.
type statusJSON struct {
	Agent struct {
		Reachable bool `json:"reachable"`
	} `json:"agent"`
	Flows []struct {
		Name       string `json:"name"`
		Configured bool   `json:"configured"`
		Running    bool   `json:"running"`
		Files      []struct {
			Path     string `json:"path"`
			Position int64  `json:"position"`
			Size     int64  `json:"size"`
			LagBytes int64  `json:"lag_bytes"`
		} `json:"files"`
		Spool struct {
			UnackedFrames uint64 `json:"unacked_frames"`
		} `json:"spool"`
		Error string `json:"error"`
	} `json:"flows"`
}

func status(t *testing.T, cfg string) statusJSON {
	t.Helper()
	out, err := exec.Command(kinshipBin, "status", "--config", cfg, "--json").Output()
	if err != nil {
		t.Fatalf("kinship status --json: %v", err)
	}
	var st statusJSON
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("kinship status --json: %v\n%s", err, out)
	}
	return st
}

// caughtUp reports whether every named flow has read each of its files to the end and has
// nothing waiting in its spool.
func (st statusJSON) caughtUp(files map[string]int) bool {
	for _, f := range st.Flows {
		want, ok := files[f.Name]
		if !ok {
			continue
		}
		if f.Error != "" || len(f.Files) != want || f.Spool.UnackedFrames != 0 {
			return false
		}
		for _, fs := range f.Files {
			if fs.LagBytes != 0 || fs.Size < 0 {
				return false
			}
		}
		delete(files, f.Name)
	}
	return len(files) == 0
}

func waitStatus(t *testing.T, cfg, what string, cond func(statusJSON) bool) statusJSON {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		st := status(t, cfg)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last status: %+v", what, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (a *agent) waitLog(t *testing.T, substr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(a.log(), substr) {
		select {
		case <-a.exited:
			t.Fatalf("kinship exited waiting for %q: %v", substr, a.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kinship never logged %q", substr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (a *agent) log() string {
	w := a.cmd.Stderr.(*syncWriter)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.String()
}

// TestReloadKeepsUnchangedFlowsExactlyOnce: an agent runs two flows; an invalid
// configuration is sent with SIGHUP and ignored; then a valid one that leaves one flow alone
// (written elsewhere in the file), changes the other and adds a third. Lines written before
// and after each reload all arrive, the unchanged flow's exactly once. `kinship status --json`
// is read while the agent runs and after it stopped.
func TestReloadKeepsUnchangedFlowsExactlyOnce(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	for _, s := range []string{"keep", "change", "added"} {
		kinesalitetest.CreateStream(t, endpoint, s, 1)
	}
	dir := t.TempDir()
	writers := map[string]*writer{}
	for _, name := range []string{"keep", "change", "added"} {
		d := filepath.Join(dir, "logs", name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		writers[name] = newWriter(t, d, 2)
	}
	listen := freePort(t)
	flowYAML := func(name, maxAge string) string {
		return fmt.Sprintf(`  - name: %s
    paths: ["%s/logs/%s/*.log"]
    kinesis: {stream: %s, max_request_bytes: 3MiB}
    batch: {max_age: %s, max_bytes: 256KiB}
`, name, dir, name, name, maxAge)
	}
	header := fmt.Sprintf("state_dir: %s/state\naws: {region: us-east-1, endpoint: %s}\nmetrics: {listen: %q}\nflows:\n", dir, endpoint, listen)
	cfg := writeConfig(t, dir, header+flowYAML("keep", "200ms")+flowYAML("change", "200ms"))

	a := startAgent(t, endpoint, "run", "--config", cfg)
	writers["keep"].write(t, 3000)
	writers["change"].write(t, 3000)
	st := waitStatus(t, cfg, "both flows to ship", func(st statusJSON) bool {
		return st.Agent.Reachable && st.caughtUp(map[string]int{"keep": 2, "change": 2})
	})
	for _, f := range st.Flows {
		if !f.Running || !f.Configured {
			t.Errorf("flow %s while the agent runs: running %v configured %v", f.Name, f.Running, f.Configured)
		}
	}

	// An invalid configuration changes nothing.
	writeConfig(t, dir, header+"  - name: keep\n    paths: relative\n")
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	a.waitLog(t, "reload: configuration is invalid")

	// keep moves down the file unchanged, change gets another batch age, added is new.
	writeConfig(t, dir, header+flowYAML("added", "200ms")+flowYAML("change", "300ms")+"\n\n"+flowYAML("keep", "200ms"))
	writers["keep"].write(t, 1000) // in flight across the reload
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	a.waitLog(t, "configuration reloaded")
	if l := a.log(); !strings.Contains(l, "added=[added] changed=[change] removed=[] unchanged=[keep]") {
		t.Errorf("reload did not classify the flows as expected:\n%s", l)
	}
	writers["keep"].write(t, 2000)
	writers["change"].write(t, 2000)
	writers["added"].write(t, 2000)
	waitStatus(t, cfg, "all three flows to ship", func(st statusJSON) bool {
		return st.caughtUp(map[string]int{"keep": 2, "change": 2, "added": 2})
	})
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.wait(t, time.Minute); err != nil {
		t.Fatalf("kinship run: %v", err)
	}

	after := status(t, cfg)
	if after.Agent.Reachable {
		t.Error("status says the agent is reachable after it stopped")
	}
	if !after.caughtUp(map[string]int{"keep": 2, "change": 2, "added": 2}) {
		t.Errorf("status after stop: %+v", after)
	}
	for _, f := range after.Flows {
		if f.Running {
			t.Errorf("flow %s running after the agent stopped", f.Name)
		}
	}

	if dups := writers["keep"].check(t, readStream(t, endpoint, "keep").lines); dups != 0 {
		t.Errorf("unchanged flow: %d lines arrived twice; a reload must not touch it", dups)
	}
	dups := writers["change"].check(t, readStream(t, endpoint, "change").lines)
	t.Logf("changed flow: %d lines, %d duplicates across its restart", writers["change"].total(), dups)
	if dups := writers["added"].check(t, readStream(t, endpoint, "added").lines); dups != 0 {
		t.Errorf("added flow: %d duplicates", dups)
	}
}

// TestAddMetadataFromLoopbackIMDS: with add_metadata, every line reaches the stream wrapped
// as JSON with the host name, the instance id and region from IMDSv2, and the file's path.
func TestAddMetadataFromLoopbackIMDS(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "meta", 1)
	imds := imdstest.Start(t, "i-0feedfacecafe0001", "ap-southeast-2")
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, logs, 1)
	w.write(t, 500)
	cfg := writeConfig(t, dir, fmt.Sprintf(`state_dir: %s/state
aws: {region: us-east-1, endpoint: %s}
flows:
  - name: meta
    paths: ["%s/*.log"]
    kinesis: {stream: meta}
    add_metadata: {hostname: true, instance_id: true, region: true, file_path: true}
`, dir, endpoint, logs))
	cmd := exec.Command(kinshipBin, "run", "--config", cfg, "--once")
	for _, e := range agentEnv(endpoint) {
		if !strings.HasPrefix(e, "AWS_EC2_METADATA_DISABLED=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+imds.URL)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kinship run --once: %v\n%s", err, out)
	}
	host, _ := os.Hostname()
	var lines [][]byte
	for _, l := range readStream(t, endpoint, "meta").lines {
		var r struct {
			Data       string `json:"data"`
			Host       string `json:"host"`
			InstanceID string `json:"instance_id"`
			Region     string `json:"region"`
			Path       string `json:"path"`
		}
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("record is not JSON: %v: %s", err, l)
		}
		if r.Host != host || r.InstanceID != "i-0feedfacecafe0001" || r.Region != "ap-southeast-2" || r.Path != filepath.Join(logs, "app0.log") {
			t.Fatalf("record metadata = %+v", r)
		}
		lines = append(lines, []byte(r.Data))
	}
	if dups := w.check(t, lines); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	if imds.TokenPuts.Load() == 0 || imds.Unauthorized.Load() != 0 {
		t.Errorf("IMDS token PUTs %d, unauthorized reads %d: not IMDSv2", imds.TokenPuts.Load(), imds.Unauthorized.Load())
	}
}

// The agent runs Go code on one thread unless GOMAXPROCS says otherwise: on a host's shared
// cores, more cost CPU for hand-offs (see oneProcUnlessSet) and take cores from the
// applications.
func TestOneProcUnlessGOMAXPROCSIsSet(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want string
	}{{"", "1"}, {"GOMAXPROCS=2", "2"}} {
		dir := t.TempDir()
		listen := freePort(t)
		cfg := writeConfig(t, dir, fmt.Sprintf("state_dir: %s/state\nmetrics: {listen: %q}\nflows:\n  - name: dry\n    paths: [\"%s/*.log\"]\n    discard: {}\n", dir, listen, dir))
		env := agentEnv("http://127.0.0.1:1")
		if tc.env != "" {
			env = append(env, tc.env)
		}
		a := startAgentWith(t, env, nil, "run", "--config", cfg)
		var got string
		deadline := time.Now().Add(30 * time.Second)
		for got == "" && time.Now().Before(deadline) {
			for _, l := range strings.Split(scrape(t, listen), "\n") {
				if v, ok := strings.CutPrefix(l, "go_sched_gomaxprocs_threads "); ok {
					got = v
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got != tc.want {
			t.Errorf("environment %q: GOMAXPROCS %q on /metrics, want %s", tc.env, got, tc.want)
		}
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		if err := a.wait(t, time.Minute); err != nil {
			t.Errorf("kinship run: %v", err)
		}
	}
}
