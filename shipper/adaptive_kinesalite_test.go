package shipper

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinship-agent/kinship/internal/testenv/faultproxy"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// Half of the first 30 requests are throttled: the shipper slows down instead of hammering,
// speeds up again once the throttling stops, and every record arrives exactly once.
func TestKinesaliteThrottlingLowersTheRateThenRecovers(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "adaptive", 2)
	const throttledRequests = 30
	proxy := faultproxy.Start(t, endpoint, func(n, _ int) faultproxy.Fault {
		if n < throttledRequests && n%2 == 0 {
			return faultproxy.Fault{Kind: faultproxy.Throttle}
		}
		if n < throttledRequests && n%5 == 1 {
			return faultproxy.Fault{Kind: faultproxy.FailEntries, Fail: func(i, _ int) bool { return i%4 == 0 }}
		}
		return faultproxy.Fault{}
	})
	// SDK retries off: every throttle the proxy injects reaches the shipper.
	client := kinesis.NewFromConfig(sdkConfig(t, proxy.URL), func(o *kinesis.Options) { o.Retryer = aws.NopRetryer{} })
	pool := e2eItems(20000, 100)
	pushed := 5000
	src := newFakeSource(pool[:pushed])
	m := Metrics{}.withDefaults()
	logs := &logBuffer{}
	s := New(src, NewKinesis(client, "adaptive", Limits{MaxRecords: 100}), Options{
		Metrics: m, Logger: logs.logger(), BackoffBase: time.Millisecond, BackoffMax: 20 * time.Millisecond,
		MinBytesPerSec: 128 << 10, MinRecordsPerSec: 1000,
	})
	stop := runShipper(t, s)

	// Keep a trickle going until the limiter has lifted its limit: recovery is judged on
	// accepted sends, and the test must not depend on how fast this machine ships.
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := s.SendRate()
		if r.Recoveries > 0 && !r.Limited && len(src.ackCounts()) == pushed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: rate %+v, %d of %d acked\n%s", r, len(src.ackCounts()), pushed, logs.String())
		}
		if len(src.ackCounts()) == pushed && pushed < len(pool) {
			src.push(pool[pushed : pushed+100]...)
			pushed += 100
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	assertAckedOnce(t, src, pushed)
	assertArrivedOnce(t, readStream(t, endpoint, "adaptive"), pushed)

	r := s.SendRate()
	if r.Cuts == 0 || r.LowestBytesPerSec <= 0 {
		t.Errorf("the rate was never lowered: %+v", r)
	}
	if r.Limited || r.Recoveries == 0 {
		t.Errorf("the rate did not come back up: %+v", r)
	}
	if v := value(m.SendRate); v != 0 {
		t.Errorf("kinship_send_rate_bytes = %v after recovery, want 0 (not limited)", v)
	}
	if got, want := value(m.Retries), float64(proxy.Failed()); got != want {
		t.Errorf("Retries = %v, want %v (every record the proxy failed, resent once per failure)", got, want)
	}
	if v := value(m.SendErrors.WithLabelValues("throttled")); v == 0 {
		t.Error("no throttled send errors counted")
	}
	t.Logf("pushed %d records; %d cuts, lowest %.0f B/s, %d recoveries, %v records failed by the proxy",
		pushed, r.Cuts, r.LowestBytesPerSec, r.Recoveries, proxy.Failed())
}
