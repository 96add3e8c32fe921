package metrics

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func gatherHeadroom(t *testing.T, reg *prometheus.Registry) map[string][]*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]*dto.Metric{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf.GetMetric()
	}
	return out
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// The headroom series carry the names and labels dashboards use, read at each scrape; an
// unknown shard count is left out rather than shown as 0; a flow rebuilt under the same name
// keeps its series when the old one stops.
func TestHeadroomSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	set := New(reg)
	util := 0.25
	stopOld := set.Flow("app").ReportHeadroom(func() StreamHeadroom { return StreamHeadroom{Stream: "old"} })
	stop := set.Flow("app").ReportHeadroom(func() StreamHeadroom {
		return StreamHeadroom{Stream: "logs", OpenShards: 2, Utilization: util,
			Shards: []ShardHeadroom{{ID: "shardId-000000000001", BytesPerSec: 1000, RecordsPerSec: 2, Throttled: 3}}}
	})
	stopOld() // replaced: must not remove the new source
	set.Flow("keyless").ReportHeadroom(func() StreamHeadroom { return StreamHeadroom{Stream: "other"} })

	util = 0.75 // read at scrape time, not at registration
	got := gatherHeadroom(t, reg)
	want := map[string]struct {
		labels map[string]string
		value  float64
	}{
		"kinship_stream_open_shards":             {map[string]string{"flow": "app", "stream": "logs"}, 2},
		"kinship_stream_write_utilization":       {map[string]string{"flow": "app", "stream": "logs"}, 0.75},
		"kinship_shard_write_bytes_per_second":   {map[string]string{"flow": "app", "shard": "shardId-000000000001"}, 1000},
		"kinship_shard_write_records_per_second": {map[string]string{"flow": "app", "shard": "shardId-000000000001"}, 2},
		"kinship_shard_throttled_total":          {map[string]string{"flow": "app", "shard": "shardId-000000000001"}, 3},
	}
	for name, w := range want {
		found := false
		for _, m := range got[name] {
			if fmt.Sprint(labels(m)) != fmt.Sprint(w.labels) {
				continue
			}
			found = true
			v := m.GetGauge().GetValue()
			if m.GetCounter() != nil {
				v = m.GetCounter().GetValue()
			}
			if v != w.value {
				t.Errorf("%s%v = %v, want %v", name, w.labels, v, w.value)
			}
		}
		if !found {
			t.Errorf("%s%v missing; have %v", name, w.labels, got[name])
		}
	}
	for _, m := range got["kinship_stream_open_shards"] {
		if labels(m)["flow"] == "keyless" {
			t.Errorf("open shards of a stream whose count is unknown exported as %v", m.GetGauge().GetValue())
		}
	}
	stop()
	for _, m := range gatherHeadroom(t, reg)["kinship_stream_write_utilization"] {
		if labels(m)["flow"] == "app" {
			t.Errorf("series of a stopped flow still exported: %v", labels(m))
		}
	}
}

// Over MaxShardSeries shards, no per-shard series at all: they would cost a series per
// shard per flow per host.
func TestHeadroomShardSeriesBound(t *testing.T) {
	reg := prometheus.NewRegistry()
	var shards []ShardHeadroom
	for i := range MaxShardSeries + 1 {
		shards = append(shards, ShardHeadroom{ID: fmt.Sprint(i), BytesPerSec: 1})
	}
	New(reg).Flow("app").ReportHeadroom(func() StreamHeadroom { return StreamHeadroom{Stream: "s", OpenShards: 65, Shards: shards} })
	got := gatherHeadroom(t, reg)
	if n := len(got["kinship_shard_write_bytes_per_second"]); n != 0 {
		t.Errorf("%d per-shard series for %d shards", n, len(shards))
	}
	if n := len(got["kinship_stream_write_utilization"]); n != 1 {
		t.Errorf("%d utilization series, want 1", n)
	}
}
