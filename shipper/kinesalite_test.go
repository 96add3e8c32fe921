package shipper

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinship-agent/kinship/internal/faultproxy"
	"github.com/kinship-agent/kinship/internal/kinesalitetest"
	"github.com/kinship-agent/kinship/internal/metrics"
)

// e2eItems returns n records whose Data starts with a unique id, spread over partition keys.
func e2eItems(n, size int) []Item {
	out := make([]Item, n)
	for i := range out {
		d := fmt.Appendf(nil, "rec-%07d|", i)
		for len(d) < size {
			d = append(d, byte('a'+i%26))
		}
		out[i] = Item{Seq: uint64(i), Record: Record{PartitionKey: fmt.Sprintf("pk-%d", i%97), Data: d, UserRecords: 1}}
	}
	return out
}

func sdkConfig(t *testing.T, endpoint string) aws.Config {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("kinshiptest", "kinshiptest", ""),
		BaseEndpoint: aws.String(endpoint),
	}
}

// readStream reads every shard of stream from the start and counts each record id.
func readStream(t *testing.T, endpoint, stream string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, r := range kinesalitetest.ReadAll(t, endpoint, stream) {
		id, _, _ := strings.Cut(string(r.Data), "|")
		seen[id]++
	}
	return seen
}

func assertArrivedOnce(t *testing.T, seen map[string]int, n int) {
	t.Helper()
	missing, dup := 0, 0
	for i := range n {
		switch c := seen[fmt.Sprintf("rec-%07d", i)]; {
		case c == 0:
			missing++
		case c > 1:
			dup += c - 1
		}
	}
	if missing > 0 || dup > 0 || len(seen) != n {
		t.Errorf("stream holds %d distinct records: %d of %d missing, %d duplicates", len(seen), missing, n, dup)
	}
}

func TestKinesaliteEveryRecordArrivesOnce(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "ship", 2)
	const n = 20000
	src := newFakeSource(e2eItems(n, 200))
	m := metrics.ForTest("e2e")
	s := New(src, NewKinesis(NewKinesisClient(sdkConfig(t, endpoint)), "ship", Limits{}), Options{Metrics: m})
	start := time.Now()
	stop := runShipper(t, s)
	waitAcked(t, src, 60*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	shipped := time.Since(start)
	assertAckedOnce(t, src, n)
	assertArrivedOnce(t, readStream(t, endpoint, "ship"), n)
	t.Logf("shipped %d records in %v, read back in %v", n, shipped.Round(time.Millisecond), (time.Since(start) - shipped).Round(time.Millisecond))
	if v := value(m.RecordsSent); v != n {
		t.Errorf("RecordsSent = %v, want %d", v, n)
	}
}

func TestKinesaliteFaultsAreRetriedWithoutLossOrDuplicates(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "faults", 2)
	proxy := faultproxy.Start(t, endpoint, func(n, records int) faultproxy.Fault {
		switch n % 8 {
		case 1:
			return faultproxy.Fault{Kind: faultproxy.Throttle}
		case 3:
			return faultproxy.Fault{Kind: faultproxy.ServerError}
		case 4:
			return faultproxy.Fault{Kind: faultproxy.FailEntries, Fail: func(i, _ int) bool { return i%3 == 0 }}
		case 5:
			return faultproxy.Fault{Kind: faultproxy.FailEntries, Code: "InternalFailure", Fail: func(i, _ int) bool { return i%10 == 7 }}
		case 6:
			return faultproxy.Fault{Kind: faultproxy.Reset}
		}
		return faultproxy.Fault{}
	})
	// SDK retries off, so that every fault the proxy injects is one the shipper must handle
	// and the Retries counter can be checked exactly.
	client := kinesis.NewFromConfig(sdkConfig(t, proxy.URL), func(o *kinesis.Options) { o.Retryer = aws.NopRetryer{} })
	const n = 5000
	src := newFakeSource(e2eItems(n, 100))
	m := metrics.ForTest("faults")
	s := New(src, NewKinesis(client, "faults", Limits{MaxRecords: 100}),
		Options{Metrics: m, BackoffBase: time.Millisecond, BackoffMax: 20 * time.Millisecond})
	stop := runShipper(t, s)
	waitAcked(t, src, 60*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	assertAckedOnce(t, src, n)
	assertArrivedOnce(t, readStream(t, endpoint, "faults"), n)

	kinds := map[faultproxy.Kind]int{}
	for _, e := range proxy.Events() {
		kinds[e.Kind]++
	}
	for _, k := range []faultproxy.Kind{faultproxy.Throttle, faultproxy.ServerError, faultproxy.FailEntries, faultproxy.Reset} {
		if kinds[k] == 0 {
			t.Errorf("schedule never injected %v: %v", k, kinds)
		}
	}
	if got, want := value(m.Retries), float64(proxy.Failed()); got != want {
		t.Errorf("Retries = %v, want %v (every record the proxy failed, resent once per failure)", got, want)
	}
	if v := value(m.SendErrors.WithLabelValues("throttled")); v == 0 {
		t.Error("no throttled send errors counted")
	}
	if v := value(m.SendErrors.WithLabelValues("transient")); v == 0 {
		t.Error("no transient send errors counted")
	}
	if v := value(m.RecordsSent); v != n {
		t.Errorf("RecordsSent = %v, want %d", v, n)
	}
}
