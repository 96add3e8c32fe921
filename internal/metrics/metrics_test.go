package metrics

import (
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The names are a contract with operators' dashboards (docs/operations.md, packaging/monitoring): renaming one breaks them.
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
		"kinship_spool_appended_bytes_total", "kinship_spool_stored_bytes_total", "kinship_spool_unacked_bytes",
	} {
		if !got[name] {
			t.Errorf("metric %s is not registered", name)
		}
	}
}

// A flow removed by a reload leaves no series behind, whichever of its metrics it touched;
// the flows that stay keep theirs.
func TestForgetRemovesEverySeriesOfTheFlow(t *testing.T) {
	reg := prometheus.NewRegistry()
	set := New(reg)
	touchAll(t, set.Flow("gone"))
	touchAll(t, set.Flow("kept"))
	set.Forget("gone")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "flow" && l.GetValue() == "gone" {
					t.Errorf("%s still has a series of the removed flow", mf.GetName())
				}
				if l.GetName() == "flow" && l.GetValue() == "kept" {
					kept++
				}
			}
		}
	}
	if fields := len(reflect.VisibleFields(reflect.TypeOf(Flow{}))) - 2; kept < fields { // less name and headroom
		t.Errorf("%d series of the kept flow, want at least one per field (%d)", kept, fields)
	}
}

// touchAll creates a series for every metric of f: counters and gauges are incremented,
// vectors get one labelled child.
func touchAll(t *testing.T, f *Flow) {
	t.Helper()
	v := reflect.ValueOf(f).Elem()
	for i := range v.NumField() {
		if !v.Type().Field(i).IsExported() {
			continue
		}
		switch m := v.Field(i).Interface().(type) {
		case prometheus.Counter:
			m.Inc()
		case prometheus.Gauge:
			m.Inc()
		case *prometheus.CounterVec:
			m.WithLabelValues("x").Inc()
		case *prometheus.GaugeVec:
			m.WithLabelValues("x").Inc()
		default:
			t.Fatalf("field %s of type %T: teach touchAll about it", v.Type().Field(i).Name, m)
		}
	}
}
