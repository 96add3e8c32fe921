package config

import (
	"strings"
	"testing"
)

func TestGlobalSpool(t *testing.T) {
	const flow = "flows: [{name: app, paths: [/var/log/a.log], discard: {}}]\n"
	cfg, err := Parse("k.yaml", []byte(flow))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Spool.MaxBytes != 0 {
		t.Errorf("default global spool bound = %s, want 0 (unbounded)", cfg.Spool.MaxBytes)
	}
	cfg, err = Parse("k.yaml", []byte("spool: {max_bytes: 2GiB}\n"+flow))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Spool.MaxBytes != 2*GiB {
		t.Errorf("spool.max_bytes = %s, want 2GiB", cfg.Spool.MaxBytes)
	}
	for _, tc := range []struct{ doc, want string }{
		{"spool: {max_bytes: 0}\n", `k.yaml:1:20: spool.max_bytes: "0": must be positive`},
		{"spool: {max_bytes: lots}\n", `k.yaml:1:20: spool.max_bytes: "lots"`},
		{"spool: {when_full: block}\n", `k.yaml:1:9: unknown key "when_full" in the top-level spool`},
		{"spool:\n  max_bytes: 512KiB\n", `k.yaml:2:14: spool.max_bytes: 512KiB is smaller than batch.max_bytes of flow "app" (1MiB)`},
	} {
		_, err := Parse("k.yaml", []byte(tc.doc+flow))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.doc, err, tc.want)
		}
	}
}
