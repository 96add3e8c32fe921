package flow

import (
	"testing"

	"github.com/kinship-agent/kinship/config"
)

// Each destination's max_in_flight bounds the flow's shipper, not only the kinesis one.
func TestMaxInFlightFromEachDestination(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`flows:
  - {name: k, paths: [/a], kinesis: {stream: s, max_in_flight: 7}}
  - {name: f, paths: [/a], firehose: {delivery_stream: d, max_in_flight: 2}}
  - {name: h, paths: [/a], http: {url: "http://127.0.0.1:1/", max_in_flight: 9}}
  - {name: hd, paths: [/a], http: {url: "http://127.0.0.1:1/"}}
  - {name: d, paths: [/a], discard: {}}
`))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{7, 2, 9, config.DefaultMaxInFlight, config.DefaultMaxInFlight} {
		if got := maxInFlight(cfg.Flows[i]); got != want {
			t.Errorf("flow %s: max in flight %d, want %d", cfg.Flows[i].Name, got, want)
		}
	}
}
