package supervisor

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/config"
)

// A flow that died is reported by /healthz with its error (the service is still up, so
// systemd would not notice without it).
func TestHealthzNamesAStoppedFlow(t *testing.T) {
	s := New(t.Context(), &config.Config{}, nil, slog.New(slog.DiscardHandler), false)
	r := &runningFlow{cfg: config.Flow{Name: "app"}, done: make(chan struct{}), err: errors.New("spool: disk full")}
	close(r.done)
	s.flows["app"] = r
	rec := httptest.NewRecorder()
	s.HealthHandler(0)(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "flow app: stopped: spool: disk full") {
		t.Errorf("/healthz = %d %q", rec.Code, rec.Body.String())
	}
	empty := New(t.Context(), &config.Config{}, nil, slog.New(slog.DiscardHandler), false)
	rec = httptest.NewRecorder()
	empty.HealthHandler(time.Minute)(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "ok\n" {
		t.Errorf("/healthz with nothing wrong = %d %q", rec.Code, rec.Body.String())
	}
}
