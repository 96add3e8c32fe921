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
	srv, addr, err := ServeMetrics("127.0.0.1:0", reg, slog.New(slog.DiscardHandler))
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
