package config

import (
	"strings"
	"testing"
	"time"
)

func TestMetricsUnhealthyAfter(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte("metrics: {listen: '127.0.0.1:0', unhealthy_after: 90s}\nflows: [{name: a, paths: [/x/*.log], discard: {}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Metrics.UnhealthyAfter.D() != 90*time.Second {
		t.Errorf("unhealthy_after = %v", cfg.Metrics.UnhealthyAfter)
	}
	if _, err := Parse("k.yaml", []byte("metrics: {unhealthy_after: -1s}\nflows: [{name: a, paths: [/x/*.log], discard: {}}]\n")); err == nil || !strings.Contains(err.Error(), "k.yaml:1:") {
		t.Errorf("negative unhealthy_after: %v", err)
	}
}

func TestAddMetadata(t *testing.T) {
	cfg, err := Parse("k.yaml", []byte("flows: [{name: a, paths: [/x/*.log], discard: {}, add_metadata: {hostname: true, region: true, file_path: true}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Flows[0].AddMetadata; m == nil || *m != (AddMetadata{Hostname: true, Region: true, FilePath: true}) || !m.NeedsIMDS() {
		t.Errorf("add_metadata = %+v", m)
	}
	cfg, err = Parse("k.yaml", []byte("flows: [{name: a, paths: [/x/*.log], discard: {}, add_metadata: {hostname: false}}]\n"))
	if err != nil || cfg.Flows[0].AddMetadata != nil {
		t.Errorf("all fields off: %+v, %v; want lines left alone", cfg.Flows[0].AddMetadata, err)
	}
	_, err = Parse("k.yaml", []byte("flows:\n  - name: a\n    paths: [/x/*.log]\n    discard: {}\n    add_metadata: {hostname: yes please, ami_id: true}\n"))
	if err == nil || !strings.Contains(err.Error(), "k.yaml:5:") || !strings.Contains(err.Error(), "ami_id") {
		t.Errorf("bad add_metadata: %v", err)
	}
}
