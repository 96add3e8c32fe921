// Package packaging holds no code: its tests check what the packages ship besides the
// binary, here the Grafana dashboard and the Prometheus alerting rules.
package packaging

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/kinship-agent/kinship/internal/metrics"
)

const (
	rulesFile     = "monitoring/kinship-alerts.yml"
	rulesTestFile = "monitoring/kinship-alerts.test.yml"
	dashboardFile = "monitoring/kinship-dashboard.json"
)

// promtool validates the rules and runs their unit tests. It comes with Debian's prometheus
// package (scripts/test-deps.sh installs it); without it the test fails, so that CI never
// passes without having checked the rules.
func TestAlertRulesPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not installed (apt-get install prometheus, or scripts/test-deps.sh): %v", err)
	}
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// exported returns every metric name the agent exports, from a metrics.Set on a fresh
// registry with each vector touched once (a vector without children is not gathered).
func exported(t *testing.T) map[string]bool {
	reg := prometheus.NewRegistry()
	s := metrics.New(reg)
	f := s.Flow("x")
	f.SendErrors.WithLabelValues("throttled").Inc()
	s.SpoolGlobal(func() float64 { return 0 }, func() float64 { return 0 })
	s.OrphanSpool("gone", 1)
	stop := f.ReportHeadroom(func() metrics.StreamHeadroom {
		return metrics.StreamHeadroom{Stream: "s", OpenShards: 1, Utilization: 0.1,
			Shards: []metrics.ShardHeadroom{{ID: "shardId-000000000000", BytesPerSec: 1, RecordsPerSec: 1, Throttled: 1}}}
	})
	defer stop()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"up": true} // Prometheus's own, per scrape target
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	return names
}

// queries returns every PromQL expression of the rules and the dashboard, by where it is.
func queries(t *testing.T) map[string]string {
	out := map[string]string{}
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert] = r.Expr
		}
	}
	var dash struct {
		Panels []struct {
			ID      int
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Name       string
				Definition string
			}
		}
	}
	b, err = os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("dashboard: panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		for i, tg := range p.Targets {
			out["panel "+p.Title+" #"+string(rune('A'+i))] = tg.Expr
		}
	}
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			out["variable "+v.Name] = v.Definition
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d queries found: the files' structure changed under the test", len(out))
	}
	return out
}

// metricName finds names in PromQL: identifiers before a selector, a range or an operator,
// less functions, keywords, label names inside braces and by/on/without lists, and strings.
var (
	stringLit   = regexp.MustCompile(`"[^"]*"`)
	labelValues = regexp.MustCompile(`label_values\((.*),\s*[a-zA-Z_]+\s*\)`) // Grafana's: the label is no metric
	braces      = regexp.MustCompile(`\{[^}]*\}`)
	grouping    = regexp.MustCompile(`\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)`)
	ident       = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	notNames    = map[string]bool{"sum": true, "rate": true, "increase": true, "deriv": true, "and": true, "or": true,
		"unless": true, "label_values": true, "offset": true, "bool": true, "max": true, "min": true, "avg": true}
)

func metricNames(expr string) []string {
	e := labelValues.ReplaceAllString(expr, "$1")
	e = stringLit.ReplaceAllString(e, `""`)
	e = braces.ReplaceAllString(e, "{}")
	e = grouping.ReplaceAllString(e, "")
	e = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(e, "[]")
	e = regexp.MustCompile(`\$[a-zA-Z_]+`).ReplaceAllString(e, "")
	var names []string
	for _, m := range ident.FindAllString(e, -1) {
		if notNames[m] || regexp.MustCompile(`^[0-9]`).MatchString(m) {
			continue
		}
		names = append(names, m)
	}
	return names
}

// Every metric a rule or a panel queries is one the agent exports: a renamed metric would
// otherwise leave an alert that can never fire and a panel that stays empty.
func TestQueriesUseExportedMetrics(t *testing.T) {
	have := exported(t)
	used := map[string]bool{}
	for where, expr := range queries(t) {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric found in %q", where, expr)
		}
		for _, n := range names {
			used[n] = true
			if !have[n] {
				t.Errorf("%s uses %s, which the agent does not export", where, n)
			}
		}
	}
	// The dashboard shows every kinship metric: a new one is a reminder to add a panel.
	var missing []string
	for n := range have {
		if strings.HasPrefix(n, "kinship_") && !used[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no panel or rule uses %v", missing)
	}
}

// The name extraction itself: a test that cannot fail is a defect.
func TestMetricNames(t *testing.T) {
	if got := metricNames(`label_values(kinship_c{instance=~"$instance"}, flow)`); strings.Join(got, ",") != "kinship_c" {
		t.Errorf("metricNames(label_values) = %v", got)
	}
	got := metricNames(`sum by (instance, flow) (rate(kinship_a_total{flow=~"$flow", reason="x"}[5m])) / kinship_b > 0.8 and on (instance) up{job="k"} == 0`)
	if strings.Join(got, ",") != "kinship_a_total,kinship_b,up" {
		t.Errorf("metricNames = %v", got)
	}
}
