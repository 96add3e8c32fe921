package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/flow"
	"github.com/kinship-agent/kinship/internal/redact"
)

// route is one more handler on the metrics server.
type route struct {
	pattern string
	handler http.Handler
}

// serveMetricsOn serves /metrics, /healthz (always "ok" unless a route replaces it) and the
// given routes on addr, and returns the address it listens on.
func serveMetricsOn(addr string, reg *prometheus.Registry, log *slog.Logger, routes ...route) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	if w := ExposureWarning(addr); w != "" {
		log.Warn(w, "addr", addr)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	health := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	}))
	for _, r := range routes {
		if r.pattern == "/healthz" {
			health = r.handler
			continue
		}
		mux.Handle(r.pattern, r.handler)
	}
	mux.Handle("/healthz", health)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return srv, ln.Addr().String(), nil
}

// ServeMetrics serves /metrics from reg, /healthz and /status on metrics.listen (nothing
// when it is empty) until the returned stop is called.
func (s *Supervisor) ServeMetrics(reg *prometheus.Registry) (stop func(), err error) {
	m := s.cfg.Metrics
	if m.Listen == "" {
		return func() {}, nil
	}
	srv, _, err := serveMetricsOn(m.Listen, reg, s.log,
		route{pattern: "/healthz", handler: s.healthHandler(m.UnhealthyAfter.D())},
		route{pattern: "/status", handler: http.HandlerFunc(s.statusHandler)})
	if err != nil {
		return nil, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// ExposureWarning says what is wrong with metrics.listen addr when it accepts connections on
// every interface ("" when it does not): /status lists every file path the agent reads and
// the last errors, which the network has no business seeing.
func ExposureWarning(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return ""
	}
	return fmt.Sprintf("metrics.listen %q accepts connections on every network interface, and /status shows every "+
		"file path and error to whoever connects: listen on 127.0.0.1:%s instead, unless a scraper on another host "+
		"needs it (then restrict access with a firewall)", addr, port)
}

// statusHandler serves the running flows' status as JSON (what `kinship status` merges).
func (s *Supervisor) statusHandler(w http.ResponseWriter, _ *http.Request) {
	running := s.running()
	out := make([]flow.Status, 0, len(running))
	for _, r := range running {
		st := r.f.Status()
		st.Running = !r.exited()
		RedactStatus(&st)
		out = append(out, st)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// healthHandler answers 503 with the reasons when a flow stopped, has data waiting in its
// spool and shipped nothing for metrics.unhealthy_after, or has had a file it cannot read
// (permission denied, EIO...) for that long; 200 "ok" otherwise.
func (s *Supervisor) healthHandler(after time.Duration) http.HandlerFunc {
	if after <= 0 {
		after = config.DefaultUnhealthyAfter.D()
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		now := time.Now()
		var reasons []string
		for _, r := range s.running() {
			if r.exited() {
				if !s.once {
					reasons = append(reasons, fmt.Sprintf("flow %s: stopped: %v", r.cfg.Name, cmpOrErr(r.err)))
				}
				continue
			}
			if ok, why := r.f.Healthy(now, after); !ok {
				reasons = append(reasons, why)
			}
			for _, u := range r.f.Unreadable() {
				if now.Sub(u.Since) > after && s.unreadableNow(u.Path) {
					reasons = append(reasons, fmt.Sprintf("flow %s: cannot read %s since %s (%s): %s", r.cfg.Name, u.Path,
						u.Since.UTC().Format(time.RFC3339), now.Sub(u.Since).Round(time.Second), u.Err))
				}
			}
		}
		if len(reasons) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "unhealthy: "+redact.Text(strings.Join(reasons, "\n"))+"\n")
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	}
}

// unreadableNow checks again a path the tailer reported unreadable: the tailer says when a
// file it could not open opens at last, but not when a read error on an open file or a
// directory listing goes away, nor when the unreadable file is deleted.
func unreadableNow(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	defer func() { _ = f.Close() }()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		_, err = f.ReadDir(1)
		return err != nil && !errors.Is(err, io.EOF)
	}
	_, err = f.Read(make([]byte, 1))
	return err != nil && !errors.Is(err, io.EOF)
}

// RedactStatus hides the secrets of URLs quoted in a status's error texts (an http.url with
// ?token=..., say), for /status and `kinship status`.
func RedactStatus(st *flow.Status) {
	st.Error, st.LastError = redact.Text(st.Error), redact.Text(st.LastError)
	st.Spool.WriteError = redact.Text(st.Spool.WriteError)
	for i := range st.Files {
		st.Files[i].Error = redact.Text(st.Files[i].Error)
	}
}

func cmpOrErr(err error) error {
	if err == nil {
		return errors.New("without an error")
	}
	return err
}
