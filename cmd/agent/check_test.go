package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
	"github.com/kinship-agent/kinship/internal/testenv/ststest"
)

// kinship check exits 0 on a host that is ready, 1 with a FAIL line naming what to fix when
// it is not, and 2 for a bad --as-user.
func TestCheckCommand(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	for _, kv := range kinesalitetest.Env(endpoint) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ENDPOINT_URL_STS", ststest.Start(t, 0).URL)
	kinesalitetest.CreateStream(t, endpoint, "app-logs", 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.log"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgFile := func(stream string) string {
		p := filepath.Join(dir, stream+".yaml")
		body := fmt.Sprintf("state_dir: %s/state\nflows:\n  - {name: app, paths: [%s/*.log], kinesis: {stream: %s}}\n", dir, dir, stream)
		if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var out, errOut bytes.Buffer
	if code := runMain([]string{"check", "--config", cfgFile("app-logs"), "--as-user", "0"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d on a ready host:\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "ok   kinesis app-logs: ACTIVE, 1 open shards") {
		t.Errorf("output lacks the stream line:\n%s", out.String())
	}

	out.Reset()
	errOut.Reset()
	if code := runMain([]string{"check", "--config", cfgFile("missing"), "--json"}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d with a missing stream, want 1:\n%s%s", code, out.String(), errOut.String())
	}
	var rep struct {
		OK      bool
		Results []struct{ Level, Check, Subject, Message string }
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out.String())
	}
	failed := false
	for _, r := range rep.Results {
		failed = failed || r.Level == "FAIL" && r.Check == "kinesis" && r.Subject == "missing"
	}
	if rep.OK || !failed {
		t.Errorf("no FAIL for the missing stream:\n%s", out.String())
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("flows: [{name: a}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := runMain([]string{"check", "--config", bad}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "FAIL config: "+bad+":1") {
		t.Errorf("exit %d for an invalid configuration:\n%s", code, out.String())
	}
	if code := runMain([]string{"check", "--config", cfgFile("app-logs"), "--as-user", "no-such-user-kinship-test"}, &out, &errOut); code != 2 {
		t.Errorf("exit %d for an unknown --as-user, want 2", code)
	}
}
