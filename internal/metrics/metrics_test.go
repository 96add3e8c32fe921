package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The names are a contract with operators' dashboards (DESIGN.md): renaming one breaks them.
func TestDashboardNamesAreRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := New(reg).Flow("app")
	f.SendErrors.WithLabelValues("throttled").Inc()
	f.LinesRead.Add(3)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range families {
		got[mf.GetName()] = true
		for _, m := range mf.GetMetric() {
			flow := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "flow" {
					flow = l.GetValue()
				}
			}
			if flow != "app" {
				t.Errorf("%s has flow label %q, want app", mf.GetName(), flow)
			}
		}
	}
	for _, name := range []string{
		"kinship_lines_read_total", "kinship_bytes_read_total", "kinship_lines_truncated_total",
		"kinship_records_sent_total", "kinship_user_records_sent_total", "kinship_send_errors_total",
		"kinship_retries_total", "kinship_spool_bytes", "kinship_spool_dropped_total",
		"kinship_spool_dropped_bytes_total", "kinship_send_rate_bytes",
		"kinship_files_watched", "kinship_read_lag_bytes",
		"kinship_spool_appended_bytes_total", "kinship_spool_stored_bytes_total",
	} {
		if !got[name] {
			t.Errorf("metric %s is not registered", name)
		}
	}
}
