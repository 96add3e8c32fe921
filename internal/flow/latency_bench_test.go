package flow

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
	"github.com/kinship-agent/kinship/shipper"
)

// BenchmarkLatency reports line-to-stream latency (p50, p99, max) of a flow with the default
// configuration shipping into kinesalite, at 10 lines/s and at 50,000 lines/s of 100-byte
// lines. Each line carries the time it was written; its latency is kinesalite's
// ApproximateArrivalTimestamp of the record holding it minus that time (both clocks are this
// machine's; kinesalite stamps arrivals in milliseconds). Reported, not asserted.
//
//	go test -run '^$' -bench Latency -benchtime 1x ./internal/flow   (make bench-latency)
func BenchmarkLatency(b *testing.B) {
	b.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, bc := range []struct {
		name string
		rate int // lines per second
		dur  time.Duration
	}{
		{"10-lines-per-s", 10, 6 * time.Second},
		{"50000-lines-per-s", 50_000, 4 * time.Second},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for range b.N {
				lat, records, bytes := measureLatency(b, bc.rate, bc.dur)
				slices.Sort(lat)
				q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
				b.ReportMetric(q(0.50), "p50-ms")
				b.ReportMetric(q(0.99), "p99-ms")
				b.ReportMetric(q(1), "max-ms")
				b.ReportMetric(float64(len(lat)), "lines")
				b.ReportMetric(float64(bytes)/float64(records)/1024, "KiB/record")
			}
		})
	}
}

func measureLatency(b *testing.B, rate int, dur time.Duration) (lat []time.Duration, records, size int) {
	endpoint := kinesalitetest.Start(b)
	kinesalitetest.CreateStream(b, endpoint, "lat", 4)
	dir := b.TempDir()
	logPath := filepath.Join(dir, "app.log")
	lf, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer lf.Close()
	cfg, err := config.Parse("bench.yaml", fmt.Appendf(nil, `
flows:
  - name: lat
    paths: [%q]
    start_at: beginning
    kinesis: {stream: lat}
`, filepath.Join(dir, "*.log")))
	if err != nil {
		b.Fatal(err)
	}
	fc := cfg.Flows[0]
	awsCfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("kinshiptest", "kinshiptest", "")}
	dst := shipper.NewKinesis(shipper.NewKinesisClient(awsCfg), "lat", shipper.Limits{
		MaxRecordBytes: int(fc.Kinesis.MaxRecordBytes), MaxRequestBytes: int(fc.Kinesis.MaxRequestBytes)})
	f, err := New(fc, Deps{Dir: filepath.Join(dir, "state"), Destination: dst})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, false) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	time.Sleep(500 * time.Millisecond) // the tailer opens the file

	// Lines are written in ticks of 10 ms (or one per tick below 100 lines/s), each stamped
	// with the time of its write.
	tick := 10 * time.Millisecond
	if rate < 100 {
		tick = time.Second / time.Duration(rate)
	}
	pad := bytes.Repeat([]byte("x"), 100)
	var buf []byte
	start := time.Now()
	sent := 0
	for t := time.NewTicker(tick); time.Since(start) < dur; <-t.C {
		due := int(float64(rate) * time.Since(start).Seconds())
		if due <= sent {
			due = sent + 1
		}
		buf = buf[:0]
		now := time.Now().UnixNano()
		for ; sent < due; sent++ {
			l := len(buf)
			buf = strconv.AppendInt(buf, now, 10)
			buf = append(buf, ' ')
			buf = append(buf, pad[:100-(len(buf)-l)-1]...)
			buf = append(buf, '\n')
		}
		if _, err := lf.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	// Wait until every line is in the stream (max_age and retries included).
	deadline := time.Now().Add(30 * time.Second)
	for f.spool.LastSeq() == 0 || f.spool.AckedThrough() < f.spool.LastSeq() {
		if time.Now().After(deadline) {
			b.Fatal("lines not shipped within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // anything still in the aggregator reaches the stream
	for time.Now().Before(deadline) && f.spool.AckedThrough() < f.spool.LastSeq() {
		time.Sleep(50 * time.Millisecond)
	}

	recs := kinesalitetest.ReadAll(b, endpoint, "lat")
	for _, r := range recs {
		size += len(r.Data)
		arrived := aws.ToTime(r.ApproximateArrivalTimestamp)
		urs, _, _ := aggregator.Deaggregate(r.Data, aws.ToString(r.PartitionKey))
		for _, u := range urs {
			sp := bytes.IndexByte(u.Data, ' ')
			ns, err := strconv.ParseInt(string(u.Data[:max(sp, 0)]), 10, 64)
			if err != nil {
				b.Fatalf("line %q: no timestamp", u.Data)
			}
			lat = append(lat, arrived.Sub(time.Unix(0, ns)))

		}
	}
	if len(lat) != sent {
		b.Fatalf("%d lines in the stream, %d written", len(lat), sent)
	}
	return lat, len(recs), size
}
