package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadDropIns(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "kinship.yaml")
	writeFile(t, main, `state_dir: /var/lib/kinship
aws: {region: us-east-1, endpoint: "http://127.0.0.1:4567"}
flows:
  - name: app
    paths: [/var/log/app/*.log]
    kinesis: {stream: app-logs}
`)
	// Written out of order: name order decides, not creation order.
	writeFile(t, filepath.Join(dir, "conf.d", "20-web.yaml"), `state_dir: /srv/kinship
flows:
  - name: web
    paths: [/var/log/nginx/*.log]
    discard: {}
`)
	writeFile(t, filepath.Join(dir, "conf.d", "10-db.yaml"), `aws: {region: eu-west-1}
metrics: {listen: ":9780"}
flows:
  - name: db
    paths: [/var/log/postgresql/*.log]
    kinesis: {stream: db-logs, aggregate: false}
`)
	writeFile(t, filepath.Join(dir, "conf.d", "30-ignored.yml"), "not: [valid")
	writeFile(t, filepath.Join(dir, "conf.d", "README"), "not yaml")
	if err := os.Mkdir(filepath.Join(dir, "conf.d", "40-dir.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}

	cfg, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range cfg.Flows {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "app,db,web" {
		t.Errorf("flows = %s, want app,db,web (main file, then conf.d in name order)", got)
	}
	if cfg.StateDir != "/srv/kinship" {
		t.Errorf("state_dir = %q, want the last file's", cfg.StateDir)
	}
	// A drop-in overrides the keys it sets and leaves its neighbours alone.
	if cfg.AWS.Region != "eu-west-1" || cfg.AWS.Endpoint != "http://127.0.0.1:4567" {
		t.Errorf("aws = %+v, want region from 10-db.yaml and endpoint from the main file", cfg.AWS)
	}
	if cfg.Metrics.Listen != ":9780" {
		t.Errorf("metrics.listen = %q", cfg.Metrics.Listen)
	}
	db := cfg.Flows[1]
	if want := filepath.Join(dir, "conf.d", "10-db.yaml"); db.Pos != (Pos{File: want, Line: 4, Column: 5}) {
		t.Errorf("db flow Pos = %v, want %s:4:5", db.Pos, want)
	}
	if db.Kinesis.Aggregate {
		t.Error("aggregate: false in a drop-in was not honoured")
	}
}

func TestLoadFlowsOnlyInDropIns(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kinship.yaml"), "metrics: {listen: '127.0.0.1:9780'}\n")
	writeFile(t, filepath.Join(dir, "conf.d", "app.yaml"), "flows:\n  - {name: app, paths: [/a], discard: {}}\n")
	cfg, err := Load(filepath.Join(dir, "kinship.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Flows) != 1 || cfg.Flows[0].Name != "app" {
		t.Fatalf("flows = %s", dump(cfg.Flows))
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string // relative to the temp dir; "kinship.yaml" is loaded
		want  []string          // full lines, with "DIR" for the temp dir
	}{
		{
			name: "duplicate flow across files names both places",
			files: map[string]string{
				"kinship.yaml":       "flows:\n  - name: app\n    paths: [/a]\n    discard: {}\n",
				"conf.d/10-app.yaml": "# the same flow again\nflows:\n  - name: other\n    paths: [/b]\n    discard: {}\n  - name: app\n    paths: [/b]\n    discard: {}\n",
			},
			want: []string{`DIR/conf.d/10-app.yaml:6:5: flow "app" is already defined at DIR/kinship.yaml:2:5`},
		},
		{
			name: "problems of every file at once, in load order",
			files: map[string]string{
				"kinship.yaml":     "flows:\n  - name: app\n    paths: [/a]\n    discard: {}\n    spool: {max_bytes: lots}\n",
				"conf.d/b.yaml":    "state_dir: relative\n",
				"conf.d/a.yaml":    "flows:\n  - name: x\n    paths: [/a]\n    kinesis: {}\n",
				"conf.d/c.yaml":    "flows: [\n",
				"conf.d/skip.json": "{",
			},
			want: []string{
				`DIR/kinship.yaml:5:24: spool.max_bytes: "lots": not a size (use e.g. 512MiB)`,
				`DIR/conf.d/a.yaml:4:5: kinesis.stream is required (the name of the Kinesis data stream)`,
				`DIR/conf.d/b.yaml:1:12: state_dir: "relative": must be an absolute path`,
				`DIR/conf.d/c.yaml:1: yaml: did not find expected node content`,
			},
		},
		{
			name:  "no flows anywhere",
			files: map[string]string{"kinship.yaml": "aws: {region: us-east-1}\n", "conf.d/x.yaml": "metrics: {listen: ''}\n"},
			want:  []string{`DIR/kinship.yaml:1:1: no flows configured; the smallest useful file is: flows: [{name: app, paths: ["/var/log/app/*.log"], kinesis: {stream: app-logs}}]`},
		},
		{
			name:  "missing main file",
			files: map[string]string{},
			want:  []string{`DIR/kinship.yaml: cannot read: no such file or directory`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tc.files {
				writeFile(t, filepath.Join(dir, name), data)
			}
			cfg, err := Load(filepath.Join(dir, "kinship.yaml"))
			if err == nil {
				t.Fatalf("loaded: %s", dump(cfg))
			}
			got := strings.Split(strings.ReplaceAll(err.Error(), dir, "DIR"), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
