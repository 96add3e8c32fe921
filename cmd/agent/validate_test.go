package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validate accepts the Kinesis Agent's agent.json and prints what kinship ignores.
func TestValidateAgentJSONPrintsWarnings(t *testing.T) {
	var out, errOut bytes.Buffer
	path := "../../config/testdata/agentjson/streams-real-world.json"
	if code := runMain([]string{"validate", "--config", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "ok (1 flows)") ||
		!strings.Contains(errOut.String(), path+": warning: awsAccessKeyId, awsSecretAccessKey: not supported") ||
		strings.Contains(errOut.String(), "EXAMPLE") {
		t.Errorf("stdout %q\nstderr %q", out.String(), errOut.String())
	}
}

// validate warns about a metrics endpoint open to every interface, and still accepts it.
func TestValidateWarnsAboutMetricsOnEveryInterface(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kinship.yaml")
	body := "metrics: {listen: \":9780\"}\nflows:\n  - {name: app, paths: [/var/log/app/*.log], discard: {}}\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := runMain([]string{"validate", "--config", cfg}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), cfg+": warning: metrics.listen \":9780\" accepts connections on every network interface") ||
		!strings.Contains(errOut.String(), "127.0.0.1:9780") {
		t.Errorf("stderr %q", errOut.String())
	}
}
