package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/flow"
)

// A flow that died is reported by /healthz with its error (the service is still up, so
// systemd would not notice without it).
func TestHealthzNamesAStoppedFlow(t *testing.T) {
	s := New(t.Context(), &config.Config{}, nil, slog.New(slog.DiscardHandler), false)
	r := &runningFlow{cfg: config.Flow{Name: "app"}, done: make(chan struct{}), err: errors.New("spool: disk full")}
	close(r.done)
	s.flows["app"] = r
	rec := httptest.NewRecorder()
	s.healthHandler(0)(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "flow app: stopped: spool: disk full") {
		t.Errorf("/healthz = %d %q", rec.Code, rec.Body.String())
	}
	empty := New(t.Context(), &config.Config{}, nil, slog.New(slog.DiscardHandler), false)
	rec = httptest.NewRecorder()
	empty.healthHandler(time.Minute)(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "ok\n" {
		t.Errorf("/healthz with nothing wrong = %d %q", rec.Code, rec.Body.String())
	}
}

// fakeFlow is a pipeline whose health the test sets.
type fakeFlow struct {
	unreadable []flow.UnreadableFile
}

func (f *fakeFlow) Run(ctx context.Context, _ bool) error { <-ctx.Done(); return nil }
func (f *fakeFlow) Status() flow.Status                   { return flow.Status{} }
func (f *fakeFlow) Healthy(time.Time, time.Duration) (bool, string) {
	return true, ""
}
func (f *fakeFlow) Alive(time.Time) bool              { return true }
func (f *fakeFlow) Unreadable() []flow.UnreadableFile { return f.unreadable }

// A file the flow cannot read (permission denied after a rotation created it with the wrong
// owner, say) for longer than unhealthy_after makes /healthz fail, naming flow, file and
// since when; the lines in it are not shipped, and nothing else would tell.
func TestHealthzNamesAFileUnreadableForLong(t *testing.T) {
	since := time.Now().Add(-10 * time.Minute)
	for _, tc := range []struct {
		name       string
		since      time.Time
		stillBad   bool
		wantCode   int
		wantInBody []string
	}{
		{"unreadable for long", since, true, http.StatusServiceUnavailable,
			[]string{"flow app: cannot read /var/log/app/a.log since " + since.UTC().Format(time.RFC3339), "permission denied"}},
		{"unreadable for a moment", time.Now(), true, http.StatusOK, []string{"ok"}},
		{"readable again (or gone)", since, false, http.StatusOK, []string{"ok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(t.Context(), &config.Config{}, nil, slog.New(slog.DiscardHandler), false)
			s.unreadableNow = func(string) bool { return tc.stillBad }
			s.flows["app"] = &runningFlow{cfg: config.Flow{Name: "app"}, done: make(chan struct{}), f: &fakeFlow{
				unreadable: []flow.UnreadableFile{{Path: "/var/log/app/a.log", Since: tc.since, Err: "open /var/log/app/a.log: permission denied"}}}}
			rec := httptest.NewRecorder()
			s.healthHandler(5*time.Minute)(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if rec.Code != tc.wantCode {
				t.Errorf("/healthz = %d %q, want %d", rec.Code, rec.Body.String(), tc.wantCode)
			}
			for _, want := range tc.wantInBody {
				if !strings.Contains(rec.Body.String(), want) {
					t.Errorf("/healthz body %q lacks %q", rec.Body.String(), want)
				}
			}
		})
	}
}

func TestUnreadableNowChecksAgain(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.log")
	if err := os.WriteFile(file, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, dir, filepath.Join(dir, "gone.log")} {
		if unreadableNow(path) {
			t.Errorf("%s counts as unreadable", path)
		}
	}
	if os.Geteuid() != 0 {
		if err := os.Chmod(file, 0); err != nil {
			t.Fatal(err)
		}
		if !unreadableNow(file) {
			t.Error("a file without read permission counts as readable")
		}
	}
}
