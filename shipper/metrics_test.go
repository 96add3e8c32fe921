package shipper

import (
	"context"
	"testing"
	"time"
)

// A shipper built without metrics ships as one with them: the paths that count (sent,
// retried, a throttled entry with its send error and rate) run on the zero Metrics.
func TestZeroMetricsShip(t *testing.T) {
	src := newFakeSource(items(10, 3))
	dst := &fakeDest{limits: Limits{MaxRecords: 10}}
	dst.put = func(_ context.Context, call int, recs []Record) ([]error, error) {
		res := make([]error, len(recs))
		if call == 0 {
			res[0] = &EntryError{Code: "ProvisionedThroughputExceededException", Message: "slow down"}
		}
		return res, nil
	}
	s := New(src, dst, Options{MaxInFlight: 1, Rand: zero, BackoffBase: time.Millisecond})
	stop := runShipper(t, s)
	waitAcked(t, src, 5*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	assertAckedOnce(t, src, 10)
}
