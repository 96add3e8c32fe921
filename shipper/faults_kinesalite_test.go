package shipper

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/testenv/faultproxy"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// leanClient is the PutRecords client the agent uses (NewKinesisAPI) for endpoint.
func leanClient(t *testing.T, endpoint, protocol string) KinesisAPI {
	t.Helper()
	api, err := NewKinesisAPI(context.Background(), sdkConfig(t, endpoint), KinesisAPIOptions{Protocol: protocol})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// The protocols the fault tests run with: the agent's client in each of its wire formats.
var protocols = []string{"cbor", "json"}

// One fault kind at a time, on a schedule, between the agent's client and kinesalite, in
// each protocol: every record arrives, the only duplicates are the ones the schedule forced
// (answers lost after the stream took the request), and kinship_retries_total and
// kinship_send_errors_total{reason} count exactly what the proxy did.
func TestKinesaliteFaultSchedules(t *testing.T) {
	for _, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) { testFaultSchedules(t, protocol) })
	}
}

func testFaultSchedules(t *testing.T, protocol string) {
	endpoint := kinesalitetest.Start(t)
	// slowTimeout is the shipper's per-request timeout in the slow case: long enough that an
	// honest kinesalite answer on a loaded machine never hits it (a timed-out request that
	// the stream took would be an unforced duplicate), short enough to keep the suite quick.
	const slowTimeout = 2 * time.Second
	pte := func(i, _ int) bool { return i%3 == 0 }
	cases := []struct {
		name    string
		fault   faultproxy.Fault
		every   int    // the fault hits request n when n%every == 1, for the first 30 requests
		reason  string // the kinship_send_errors_total reason the fault counts under
		perItem bool   // errors are counted per failed entry, not per request
		timeout time.Duration
	}{
		{name: "partial-throughput-exceeded", fault: faultproxy.Fault{Kind: faultproxy.FailEntries, Fail: pte},
			every: 2, reason: "throttled", perItem: true},
		{name: "partial-internal-failure", fault: faultproxy.Fault{Kind: faultproxy.FailEntries, Code: "InternalFailure",
			Fail: func(i, _ int) bool { return i%7 == 2 }}, every: 2, reason: "transient", perItem: true},
		{name: "throttle-whole-request", fault: faultproxy.Fault{Kind: faultproxy.Throttle}, every: 2, reason: "throttled"},
		{name: "limit-exceeded", fault: faultproxy.Fault{Kind: faultproxy.Throttle, Code: "LimitExceededException"},
			every: 3, reason: "throttled"},
		{name: "server-error", fault: faultproxy.Fault{Kind: faultproxy.ServerError}, every: 2, reason: "transient"},
		{name: "slow-beyond-timeout", fault: faultproxy.Fault{Kind: faultproxy.Slow, Delay: time.Minute},
			every: 8, reason: "transient", timeout: slowTimeout},
		{name: "reset-before-forward", fault: faultproxy.Fault{Kind: faultproxy.Reset}, every: 2, reason: "transient"},
		{name: "reset-after-forward", fault: faultproxy.Fault{Kind: faultproxy.ResetAfterForward}, every: 3, reason: "transient"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := fmt.Sprintf("faults-%d", i)
			kinesalitetest.CreateStream(t, endpoint, stream, 2)
			proxy := faultproxy.Start(t, endpoint, func(n, _ int) faultproxy.Fault {
				if n < 30 && n%tc.every == 1 {
					return tc.fault
				}
				return faultproxy.Fault{}
			})
			// The agent's client never retries: every fault reaches the shipper, so the
			// counters are exact.
			client := leanClient(t, proxy.URL, protocol)
			const n = 1000
			src := newFakeSource(e2eItems(n, 100))
			m := Metrics{}.withDefaults()
			timeout := tc.timeout
			if timeout == 0 {
				timeout = time.Minute
			}
			s := New(src, NewKinesis(client, stream, Limits{MaxRecords: 50}), Options{
				Metrics: m, BackoffBase: time.Millisecond, BackoffMax: 20 * time.Millisecond, RequestTimeout: timeout,
				MinBytesPerSec: 1 << 20, MinRecordsPerSec: 10000,
			})
			start := time.Now()
			stop := runShipper(t, s)
			waitAcked(t, src, 60*time.Second)
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			assertAckedOnce(t, src, n)

			var faults, failed, dups, wantErrs int
			for _, e := range proxy.Events() {
				if e.Kind == faultproxy.Forward {
					continue
				}
				faults++
				failed += e.Failed
				dups += e.Duplicates
				if tc.perItem {
					wantErrs += e.Failed
				} else {
					wantErrs++
				}
			}
			if faults == 0 || failed == 0 {
				t.Fatalf("the schedule injected nothing: %+v", proxy.Events())
			}
			if tc.fault.Kind == faultproxy.ResetAfterForward && dups == 0 {
				t.Error("reset-after-forward forced no duplicates")
			}

			seen := readStream(t, endpoint, stream)
			missing, copies := 0, 0
			for i := range n {
				c := seen[fmt.Sprintf("rec-%07d", i)]
				if c == 0 {
					missing++
				}
				copies += c
			}
			if missing > 0 || len(seen) != n {
				t.Errorf("%d of %d records missing, %d distinct ids in the stream", missing, n, len(seen))
			}
			if extra := copies - n; extra != dups {
				t.Errorf("%d duplicates in the stream, the schedule forced %d", extra, dups)
			}
			if got := value(m.Retries); got != float64(failed) {
				t.Errorf("kinship_retries_total = %v, want %d (every entry the proxy failed, resent once)", got, failed)
			}
			for _, reason := range []string{"throttled", "transient", "config", "invalid", "too_large"} {
				want := 0
				if reason == tc.reason {
					want = wantErrs
				}
				if got := value(m.SendErrors.WithLabelValues(reason)); got != float64(want) {
					t.Errorf("kinship_send_errors_total{reason=%q} = %v, want %d", reason, got, want)
				}
			}
			if v := value(m.RecordsSent); v != n {
				t.Errorf("kinship_records_sent_total = %v, want %d", v, n)
			}
			t.Logf("%d faults, %d entries failed, %d forced duplicates, %v", faults, failed, dups, time.Since(start).Round(time.Millisecond))
		})
	}
}

// The same faults, mixed, with the SDK's own client (which retries once by itself, as the
// shard map's calls do) and with the agent's PutRecords client in each protocol: every
// record arrives, no duplicate the schedule did not force, and the shipper retries no more
// entries than the proxy failed.
func TestKinesaliteMixedFaultsWithTheAgentsClient(t *testing.T) {
	for _, client := range append([]string{"sdk"}, protocols...) {
		t.Run(client, func(t *testing.T) { testMixedFaults(t, client) })
	}
}

func testMixedFaults(t *testing.T, clientKind string) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "mixed", 2)
	schedule := []faultproxy.Fault{
		{Kind: faultproxy.Throttle}, {Kind: faultproxy.Throttle, Code: "LimitExceededException"},
		{Kind: faultproxy.ServerError}, {Kind: faultproxy.ServerError},
		{Kind: faultproxy.FailEntries, Fail: func(i, _ int) bool { return i%4 == 0 }},
		{Kind: faultproxy.Reset}, {Kind: faultproxy.ResetAfterForward},
		{Kind: faultproxy.Slow, Delay: time.Minute},
	}
	proxy := faultproxy.Start(t, endpoint, func(n, _ int) faultproxy.Fault {
		if n < 40 && n%2 == 0 {
			return schedule[(n/2)%len(schedule)]
		}
		return faultproxy.Fault{}
	})
	var client KinesisAPI
	if clientKind == "sdk" {
		client = NewKinesisClient(sdkConfig(t, proxy.URL))
	} else {
		client = leanClient(t, proxy.URL, clientKind)
	}
	const n = 2000
	src := newFakeSource(e2eItems(n, 100))
	m := Metrics{}.withDefaults()
	s := New(src, NewKinesis(client, "mixed", Limits{MaxRecords: 50}), Options{
		Metrics: m, BackoffBase: time.Millisecond, BackoffMax: 20 * time.Millisecond, RequestTimeout: 2 * time.Second,
		MinBytesPerSec: 1 << 20, MinRecordsPerSec: 10000,
	})
	stop := runShipper(t, s)
	waitAcked(t, src, 60*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	assertAckedOnce(t, src, n)
	seen := readStream(t, endpoint, "mixed")
	copies := 0
	for _, c := range seen {
		copies += c
	}
	if len(seen) != n {
		t.Errorf("%d distinct records in the stream, want %d", len(seen), n)
	}
	if extra, forced := copies-n, proxy.Duplicates(); extra != forced {
		t.Errorf("%d duplicates in the stream, the schedule forced %d", extra, forced)
	}
	retries, failed := value(m.Retries), float64(proxy.Failed())
	if retries <= 0 || retries > failed {
		t.Errorf("kinship_retries_total = %v, want between 1 and the %v entries the proxy failed", retries, failed)
	}
	t.Logf("%v entries failed by the proxy, %v retried by the shipper (the SDK retried the rest), %d forced duplicates",
		failed, retries, proxy.Duplicates())
}

// The agent builds its shippers with zero Options: even then every attempt has a deadline,
// so a destination that never answers (the slow schedule above) cannot hold a request slot
// forever; the SDK's HTTP client has no overall timeout of its own.
func TestEveryAttemptHasADeadlineByDefault(t *testing.T) {
	deadlines := make(chan time.Duration, 1)
	dst := &fakeDest{put: func(ctx context.Context, _ int, _ []Record) ([]error, error) {
		d, ok := ctx.Deadline()
		if !ok {
			deadlines <- -1
		} else {
			deadlines <- time.Until(d)
		}
		return nil, nil
	}}
	src := newFakeSource(e2eItems(1, 10))
	stop := runShipper(t, New(src, dst, Options{}))
	waitAcked(t, src, 30*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := <-deadlines; d <= 0 || d > time.Minute {
		t.Errorf("a Put attempt's deadline is %v away, want at most a minute (none: -1ns)", d)
	}
}
