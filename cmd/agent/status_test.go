package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `kinship status` prints what the running agent says; an agent from before URLs were
// redacted quotes http.url's token in its errors, and status must not print it.
func TestStatusRedactsURLSecrets(t *testing.T) {
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `[{"name":"app","running":true,"files":[],"last_error":"shipper: http: Post \"https://logs.example.com/i?token=tok-s3cret\": connection refused"}]`)
	}))
	defer agent.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "kinship.yaml")
	body := fmt.Sprintf("state_dir: %s\nmetrics: {listen: %q}\nflows:\n  - {name: app, paths: [%q], discard: {}}\n",
		filepath.Join(dir, "state"), strings.TrimPrefix(agent.URL, "http://"), dir+"/*.log")
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status", "--config", cfgPath}, {"status", "--config", cfgPath, "--json"}} {
		var out, errOut strings.Builder
		if code := runMain(args, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errOut.String())
		}
		if strings.Contains(out.String(), "s3cret") || !strings.Contains(out.String(), "token=xxxxx") {
			t.Errorf("%v:\n%s", args, out.String())
		}
	}
}
