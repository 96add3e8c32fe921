package shipper

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
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
	m := Metrics{}.withDefaults()
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
