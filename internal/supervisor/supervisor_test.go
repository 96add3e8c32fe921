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

func parseFlows(t *testing.T, body string) []config.Flow {
	t.Helper()
	cfg, err := config.Parse("k.yaml", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Flows
}

// A reload must leave a flow alone when only its place in the file moved, and restart it
// when anything it runs with changed.
func TestSameFlowIgnoresPositionNotSettings(t *testing.T) {
	a := parseFlows(t, "flows:\n  - {name: a, paths: [/x/*.log], discard: {}, multiline: {start_pattern: '^\\d'}}\n")[0]
	moved := parseFlows(t, "# a comment moves everything down\n\nflows:\n  - name: a\n    paths: [/x/*.log]\n    discard: {}\n    multiline: {start_pattern: '^\\d'}\n")[0]
	if !sameFlow(a, moved) {
		t.Error("the same flow written on other lines counts as changed")
	}
	for _, changed := range []string{
		"flows:\n  - {name: a, paths: [/x/*.log, /y/*.log], discard: {}, multiline: {start_pattern: '^\\d'}}\n",
		"flows:\n  - {name: a, paths: [/x/*.log], discard: {}, multiline: {start_pattern: '^\\w'}}\n",
		"flows:\n  - {name: a, paths: [/x/*.log], discard: {}, multiline: {start_pattern: '^\\d'}, batch: {max_age: 2s}}\n",
	} {
		if sameFlow(a, parseFlows(t, changed)[0]) {
			t.Errorf("a changed flow counts as unchanged: %s", changed)
		}
	}
}

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
