package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
)

// An http.url may carry its credentials (`?token=...`, user:password@): the send errors
// quote the URL, and neither the log, /status nor /healthz may print the secret.
func TestURLSecretsNeverPrinted(t *testing.T) {
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "who are you", http.StatusUnauthorized)
	}))
	defer refusing.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().String()
	_ = ln.Close() // nothing listens there: connection refused

	dir := t.TempDir()
	logFile := filepath.Join(dir, "a.log")
	if err := os.WriteFile(logFile, []byte("one line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unauthorized := strings.Replace(refusing.URL, "http://", "http://user:pw-s3cret@", 1) + "/ingest?token=tok-s3cret&x=1"
	refused := "http://" + closedPort + "/ingest?token=tok-s3cret"
	cfg, err := config.Parse("k.yaml", []byte(fmt.Sprintf(`state_dir: %s
flows:
  - {name: unauthorized, paths: [%q], http: {url: %q}}
  - {name: refused, paths: [%q], http: {url: %q}}
`, filepath.Join(dir, "state"), logFile, unauthorized, logFile, refused)))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	s := New(ctx, cfg, metrics.New(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(logs, nil)), false)
	if err := s.StartAll(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = s.Wait(nil, nil) }()
	get := func(h http.HandlerFunc) string {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		return rec.Body.String()
	}
	deadline := time.Now().Add(30 * time.Second) // only stops a broken test from hanging
	var status string
	for {
		status = get(s.statusHandler)
		if strings.Count(status, `"last_error"`) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no send error in /status: %s", status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	health := get(s.healthHandler(time.Nanosecond))
	for what, text := range map[string]string{"/status": status, "/healthz": health, "log": logs.String()} {
		if strings.Contains(text, "s3cret") {
			t.Errorf("%s prints a secret of the URL:\n%s", what, text)
		}
	}
	for _, want := range []string{"401", "connection refused", "token=xxxxx"} {
		if !strings.Contains(status, want) {
			t.Errorf("/status lacks %q (the error must stay useful): %s", want, status)
		}
	}
}
