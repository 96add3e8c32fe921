package supervisor

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

func TestExposureWarningOnlyForEveryInterface(t *testing.T) {
	for addr, warn := range map[string]bool{
		":9780": true, "0.0.0.0:9780": true, "[::]:9780": true, "[0:0::0]:9780": true,
		"127.0.0.1:9780": false, "[::1]:9780": false, "localhost:9780": false, "10.1.2.3:9780": false, "": false,
	} {
		w := ExposureWarning(addr)
		if (w != "") != warn {
			t.Errorf("%q: warning %q, want one: %v", addr, w, warn)
		}
		if warn && !strings.Contains(w, "127.0.0.1:9780") {
			t.Errorf("%q: the warning does not say what to listen on instead: %s", addr, w)
		}
	}
}

// An agent whose metrics listen on every interface says so once at start.
func TestServeMetricsWarnsWhenListeningEverywhere(t *testing.T) {
	for addr, warnings := range map[string]int{"0.0.0.0:0": 1, "127.0.0.1:0": 0} {
		logs := &syncBuffer{}
		srv, _, err := serveMetricsOn(addr, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		_ = srv.Shutdown(context.Background())
		if got := strings.Count(logs.String(), "level=WARN"); got != warnings ||
			(warnings > 0 && !strings.Contains(logs.String(), "every network interface")) {
			t.Errorf("listen %s: %d warnings, want %d:\n%s", addr, got, warnings, logs.String())
		}
	}
}
