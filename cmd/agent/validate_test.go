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

// validate lists per flow what kinship does differently from the Kinesis Agent, after the
// warnings, names no flow that behaves the same, and still exits 0.
func TestValidateAgentJSONPrintsDifferences(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.json")
	body := `{"cloudwatch.emitMetrics": false, "kinship.aggregate": true, "flows": [
  {"filePattern": "/var/log/app/*.log", "kinesisStream": "app"},
  {"filePattern": "/var/log/same.log", "deliveryStream": "same"},
  {"filePattern": "/var/log/web.log", "deliveryStream": "web", "maxBufferSizeBytes": 4194304}]}`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := runMain([]string{"validate", "--config", cfg}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	want := cfg + `: differences from the Kinesis Agent (docs/migrating.md):
  app: filePattern: kinship does not follow symbolic links its wildcard finds (counted in kinship_files_skipped_total{reason="symlink"}; a native flow with follow_symlinks: true does); the Kinesis Agent follows them
  app: kinship.aggregate: kinship packs lines into KPL aggregated records (consumers must de-aggregate); the Kinesis Agent sends one line per Kinesis record
  web: maxBufferSizeBytes: kinship fills each request up to the service's limits (records are not held to reach a size); the Kinesis Agent sends a request once 4194304 bytes are buffered
` + cfg + ": ok (3 flows)\n"
	if out.String() != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), want)
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr %q", errOut.String())
	}
}
