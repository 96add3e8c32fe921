package flow

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/shipper"
)

// oneShard accepts every record on one shard.
type oneShard struct{}

func (oneShard) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	out := &kinesis.PutRecordsOutput{}
	for range in.Records {
		out.Records = append(out.Records, types.PutRecordsResultEntry{ShardId: aws.String("shardId-000000000007"), SequenceNumber: aws.String("1")})
	}
	return out, nil
}

// A Headroom's readings reach the flow's series (the stage knows no registry), and leave
// them when the flow stops reporting.
func TestReportHeadroom(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := shipper.NewHeadroom(oneShard{}, shipper.HeadroomOptions{Stream: "logs"})
	stop := ReportHeadroom(metrics.New(reg).Flow("app"), h)
	if _, err := h.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("logs"),
		Records: []types.PutRecordsRequestEntry{{Data: make([]byte, 100), PartitionKey: aws.String("k")}}}); err != nil {
		t.Fatal(err)
	}
	series := func() map[string]string {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "stream" || l.GetName() == "shard" {
						got[mf.GetName()] = l.GetValue()
					}
				}
			}
		}
		return got
	}
	got := series()
	if got["kinship_stream_write_utilization"] != "logs" || got["kinship_shard_write_bytes_per_second"] != "shardId-000000000007" {
		t.Errorf("headroom series %v, want the stream's and its shard's", got)
	}
	stop()
	if got := series(); len(got) != 0 {
		t.Errorf("series left after stop: %v", got)
	}
}
