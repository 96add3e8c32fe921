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
