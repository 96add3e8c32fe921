package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// The flows of agent.d/*.json beside an agent.json are appended in name order, as the
// Kinesis Agent appends them; only their flows are read.
func TestAgentJSONDropIns(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "agent.json")
	writeFile(t, main, `{"cloudwatch.emitMetrics": false, "kinship.aggregate": true,
  "flows": [{"filePattern": "/var/log/app/*.log", "kinesisStream": "app"}]}`)
	writeFile(t, filepath.Join(dir, "agent.d", "20-web.json"), `// web servers
{"flows": [{"filePattern": "/var/log/nginx/access.log", "kinesisStream": "web"}]}`)
	writeFile(t, filepath.Join(dir, "agent.d", "10-app.json"), `{"cloudwatch.namespace": "X",
  "flows": [{"filePattern": "/var/log/app/debug.log", "kinesisStream": "app", "initialPosition": "START_OF_FILE"}]}`)
	writeFile(t, filepath.Join(dir, "agent.d", "notes.txt"), `not json`)
	cfg, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range cfg.Flows {
		got = append(got, f.Name+" "+f.Paths[0]+" "+f.StartAt+" "+f.Pos.String())
	}
	want := []string{
		"app-var-log-app-.log /var/log/app/*.log end " + main + ":2:13",
		"app-var-log-app-debug.log /var/log/app/debug.log beginning " + filepath.Join(dir, "agent.d", "10-app.json") + ":2:13",
		"web /var/log/nginx/access.log end " + filepath.Join(dir, "agent.d", "20-web.json") + ":2:12",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("flows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if cfg.Metrics.CloudWatch.Namespace != AgentCloudWatchNamespace {
		t.Errorf("a drop-in's cloudwatch.namespace was used: %+v", cfg.Metrics.CloudWatch)
	}
	checkWarnings(t, cfg.Warnings, []string{
		filepath.Join(dir, "agent.d", "10-app.json") + `: cloudwatch.namespace: only "flows" is read from agent.d files (by the Kinesis Agent too)`,
	})
}

// A broken drop-in is an error naming the drop-in and the line; so is a bad flow in one.
func TestAgentJSONDropInErrors(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "agent.json")
	writeFile(t, main, `{"flows": [{"filePattern": "/var/log/app/*.log", "kinesisStream": "app"}]}`)
	broken := filepath.Join(dir, "agent.d", "broken.json")
	writeFile(t, broken, "{\"flows\": [\n  {\"filePattern\": \"/a\",\n   \"kinesisStream\": }\n]}")
	bad := filepath.Join(dir, "agent.d", "bad.json")
	writeFile(t, bad, "{\"flows\": [\n  {\"filePattern\": \"relative/*.log\", \"kinesisStream\": \"s\",\n   \"maxBufferAgeMillis\": 0}]}")
	_, err := Load(main)
	for _, want := range []string{
		bad + `:2:19: flows[0].filePattern: "relative/*.log": must be an absolute path pattern`,
		bad + ":3:26: flows[0].maxBufferAgeMillis: 0: must be 1 or more",
		broken + ":3:21: json: invalid character '}' looking for beginning of value",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant %q", err, want)
		}
	}
}

// agent.json without flows of its own is fine when its drop-ins have some.
func TestAgentJSONFlowsOnlyInDropIns(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "agent.json")
	writeFile(t, main, `{"cloudwatch.emitMetrics": false}`)
	_, err := Load(main)
	if err == nil || !strings.Contains(err.Error(), main+`:1:1: no "flows"`) {
		t.Errorf("without drop-ins: %v", err)
	}
	writeFile(t, filepath.Join(dir, "agent.d", "a.json"), `{"flows": [{"filePattern": "/a", "kinesisStream": "s"}]}`)
	cfg, err := Load(main)
	if err != nil || len(cfg.Flows) != 1 {
		t.Errorf("with a drop-in: %v", err)
	}
}
