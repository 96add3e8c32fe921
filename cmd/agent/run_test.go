package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/internal/metrics"
)

func TestMetricsEndpointServesDashboardNamesAndHealth(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.New(reg).Flow("app").LinesRead.Add(7)
	srv, addr, err := serveMetricsOn("127.0.0.1:0", reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Shutdown(context.Background()) }()
	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return string(b)
	}
	if body := get("/metrics"); !strings.Contains(body, `kinship_lines_read_total{flow="app"} 7`) {
		t.Errorf("/metrics lacks the flow's lines counter:\n%s", body)
	}
	if body := get("/healthz"); body != "ok\n" {
		t.Errorf("/healthz = %q", body)
	}
}

func TestValidateExitCodes(t *testing.T) {
	var out, errOut strings.Builder
	if code := runMain([]string{"validate", "--config", "testdata/good.yaml"}, &out, &errOut); code != 0 {
		t.Errorf("good config: exit %d, stderr %s", code, errOut.String())
	}
	errOut.Reset()
	if code := runMain([]string{"validate", "--config", "testdata/bad.yaml"}, &out, &errOut); code != 1 {
		t.Errorf("bad config: exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "bad.yaml:4:") {
		t.Errorf("bad config: stderr %q does not name file:line", errOut.String())
	}
	if code := runMain([]string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

func TestHelpPrintsEveryCommand(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "help"} {
		var out, errOut strings.Builder
		if code := runMain([]string{arg}, &out, &errOut); code != 0 {
			t.Errorf("%s: exit %d", arg, code)
		}
		for _, cmd := range []string{"run", "validate", "consume", "status", "version"} {
			if !strings.Contains(out.String(), "kinship "+cmd) {
				t.Errorf("%s: usage does not mention %q:\n%s", arg, cmd, out.String())
			}
		}
	}
}
