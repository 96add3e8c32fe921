package shipper

import (
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// A stream raised with UpdateMaxRecordSize takes records up to 10 MiB in requests up to
// 10 MiB: such records are shipped as ordinary ones (not "too large"), and batched up to
// the raised request size.
func TestKinesisRaisedLimits(t *testing.T) {
	const mib = 1 << 20
	var mu sync.Mutex
	var requests [][]int // sizes of the records of each request
	api := &fakeKinesisAPI{put: func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		sizes := make([]int, len(in.Records))
		out := &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(0)}
		for i, r := range in.Records {
			sizes[i] = len(r.Data) + len(aws.ToString(r.PartitionKey))
			out.Records = append(out.Records, types.PutRecordsResultEntry{SequenceNumber: aws.String("1"), ShardId: aws.String("shardId-0")})
		}
		mu.Lock()
		requests = append(requests, sizes)
		mu.Unlock()
		return out, nil
	}}
	dst := NewKinesis(api, "big", Limits{MaxRecordBytes: 10 * mib, MaxRequestBytes: 10 * mib})
	if l := dst.Limits(); l.MaxRecordBytes != 10*mib || l.MaxRequestBytes != 10*mib || l.MaxRecords != DefaultMaxRecords {
		t.Fatalf("limits %+v", l)
	}
	if l := NewKinesis(api, "s", Limits{}).Limits(); l.MaxRecordBytes != mib || l.MaxRequestBytes != 5*mib {
		t.Fatalf("default limits %+v", l)
	}
	pk := "0123456789abcdef"
	rec := func(seq uint64, size int) Item {
		return Item{Seq: seq, Record: Record{PartitionKey: pk, Data: make([]byte, size-len(pk)), UserRecords: 1}}
	}
	// Nothing is pending until all three are there, so the batching is deterministic.
	src := newFakeSource([]Item{rec(0, 4*mib+mib/2), rec(1, 4*mib+mib/2), rec(2, 10*mib)})
	s := New(src, dst, Options{MaxInFlight: 1})
	stop := runShipper(t, s)
	waitAcked(t, src, 30*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	assertAckedOnce(t, src, 3)
	if n := value(s.errCount[classTooLarge]); n != 0 {
		t.Errorf("%v records counted too large", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(requests) != 2 || len(requests[0]) != 2 || len(requests[1]) != 1 || requests[1][0] != 10*mib {
		t.Errorf("requests (record sizes): %v; want [[4.5MiB 4.5MiB] [10MiB]]", requests)
	}
}
