package faultproxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/kinship-agent/kinship/internal/testenv/faultproxy"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// Each fault looks to the real SDK like the service's own failure, and withheld entries never
// reach the stream.
func TestFaultsAsTheSDKSeesThem(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "fp", 1)
	faults := []faultproxy.Fault{
		{Kind: faultproxy.Throttle},
		{Kind: faultproxy.ServerError},
		{Kind: faultproxy.Reset},
		{Kind: faultproxy.FailEntries, Fail: func(i, n int) bool { return i == 1 || i == n-1 }},
		{Kind: faultproxy.FailEntries, Code: "InternalFailure", Fail: func(int, int) bool { return true }},
		{Kind: faultproxy.Forward},
	}
	proxy := faultproxy.Start(t, endpoint, func(n, _ int) faultproxy.Fault { return faults[n] })
	c := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(proxy.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("kinshiptest", "kinshiptest", ""),
		Retryer:      aws.NopRetryer{},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	put := func(ids ...int) (*kinesis.PutRecordsOutput, error) {
		in := &kinesis.PutRecordsInput{StreamName: aws.String("fp")}
		for _, id := range ids {
			in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: fmt.Appendf(nil, "%d", id), PartitionKey: aws.String("k")})
		}
		return c.PutRecords(ctx, in)
	}
	apiCode := func(err error) string {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode()
		}
		return ""
	}

	if _, err := put(0); apiCode(err) != "ProvisionedThroughputExceededException" {
		t.Errorf("throttle: err = %v", err)
	}
	var re *smithyhttp.ResponseError
	if _, err := put(0); !errors.As(err, &re) || re.HTTPStatusCode() != 500 || apiCode(err) != "InternalFailure" {
		t.Errorf("server error: err = %v", err)
	}
	var se *smithyhttp.RequestSendError
	if _, err := put(0); !errors.As(err, &se) {
		t.Errorf("reset: err = %v, want a RequestSendError", err)
	}
	out, err := put(10, 11, 12, 13)
	if err != nil {
		t.Fatalf("partial failure: %v", err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 2 || len(out.Records) != 4 {
		t.Fatalf("partial failure answer: %d failed of %d", aws.ToInt32(out.FailedRecordCount), len(out.Records))
	}
	for i, r := range out.Records {
		failed := i == 1 || i == 3
		if failed != (r.ErrorCode != nil) || failed == (r.SequenceNumber != nil) {
			t.Errorf("entry %d: code %v seq %v", i, aws.ToString(r.ErrorCode), aws.ToString(r.SequenceNumber))
		}
	}
	out, err = put(20, 21)
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 2 || aws.ToString(out.Records[0].ErrorCode) != "InternalFailure" {
		t.Fatalf("all entries failed: %+v, %v", out, err)
	}
	if _, err := put(30); err != nil {
		t.Fatalf("forward: %v", err)
	}

	// Only 10, 12 and 30 reached the stream.
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("fp"),
		ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs.Records {
		got = append(got, string(r.Data))
	}
	if fmt.Sprint(got) != "[10 12 30]" {
		t.Errorf("stream holds %v, want [10 12 30]", got)
	}
	if f := proxy.Failed(); f != 1+1+1+2+2 {
		t.Errorf("Failed() = %d, want 7", f)
	}
}

// While cut, the endpoint answers nothing (every call fails, none reaches the stream, none is
// an Event); once restored, calls pass again.
func TestCutMakesTheEndpointUnreachable(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "cut", 1)
	proxy := faultproxy.Start(t, endpoint, nil)
	c := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(proxy.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("kinshiptest", "kinshiptest", ""),
		Retryer:      aws.NopRetryer{},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	put := func(data string) error {
		_, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("cut"),
			Records: []types.PutRecordsRequestEntry{{Data: []byte(data), PartitionKey: aws.String("k")}}})
		return err
	}
	proxy.Cut(true)
	if err := put("lost"); err == nil {
		t.Fatal("PutRecords through a cut proxy succeeded")
	}
	if _, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{}); err == nil {
		t.Error("ListStreams through a cut proxy succeeded")
	}
	proxy.Cut(false)
	if err := put("kept"); err != nil {
		t.Fatalf("PutRecords after the cut ended: %v", err)
	}
	var got []string
	for _, r := range kinesalitetest.ReadAll(t, endpoint, "cut") {
		got = append(got, string(r.Data))
	}
	if len(got) != 1 || got[0] != "kept" {
		t.Errorf("stream holds %q, want only the record sent after the cut", got)
	}
	if ev := proxy.Events(); len(ev) != 1 || ev[0].Kind != faultproxy.Forward {
		t.Errorf("events %+v, want one forwarded PutRecords", ev)
	}
}

// A request the proxy has read whole reaches the upstream whole even when its client goes
// away meanwhile (kinesalite exits on a request aborted mid-body, which a kill -9 of the agent
// would cause).
func TestClientGoneRequestStillForwardedWhole(t *testing.T) {
	entered, got := make(chan struct{}), make(chan int, 1)
	var clientGone context.CancelFunc
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		// The body is larger than the socket buffers: the proxy is still sending it when
		// the client goes away.
		time.Sleep(300 * time.Millisecond)
		b, _ := io.ReadAll(r.Body)
		got <- len(b)
	}))
	defer upstream.Close()
	proxy := faultproxy.Start(t, upstream.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	clientGone = cancel
	defer cancel()
	body := strings.Repeat("x", 32<<20)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, proxy.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the request never reached the upstream")
	}
	clientGone()
	select {
	case n := <-got:
		if n != len(body) {
			t.Errorf("upstream received %d bytes of a %d-byte request", n, len(body))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the upstream never finished reading")
	}
}

// The faults added for the schedule suite: LimitExceededException as a whole-request
// throttle, a slow answer the client gives up on (never forwarded), and a reset after the
// request reached the stream (forwarded: the one fault that forces a duplicate). Events name
// the key that signed each request.
func TestSlowResetAfterForwardAndLimitExceeded(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "more", 1)
	faults := []faultproxy.Fault{
		{Kind: faultproxy.Throttle, Code: "LimitExceededException"},
		{Kind: faultproxy.Slow, Delay: time.Minute},
		{Kind: faultproxy.ResetAfterForward},
		{Kind: faultproxy.Forward},
	}
	proxy := faultproxy.Start(t, endpoint, func(n, _ int) faultproxy.Fault { return faults[n] })
	c := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(proxy.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDFAULTPROXY", "secret", "session-token"),
		Retryer:      aws.NopRetryer{},
	})
	put := func(ctx context.Context, data string) error {
		_, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("more"),
			Records: []types.PutRecordsRequestEntry{{Data: []byte(data), PartitionKey: aws.String("k")}}})
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ae smithy.APIError
	if err := put(ctx, "limit"); !errors.As(err, &ae) || ae.ErrorCode() != "LimitExceededException" {
		t.Errorf("limit exceeded: err = %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	start := time.Now()
	err := put(short, "slow")
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow: err = %v, want the client's deadline", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("slow: the client waited %v, the proxy did not let it give up", d)
	}
	if err := put(ctx, "lost-answer"); err == nil {
		t.Error("reset after forward: the client got an answer")
	}
	if err := put(ctx, "plain"); err != nil {
		t.Fatalf("forward: %v", err)
	}
	var got []string
	for _, r := range kinesalitetest.ReadAll(t, endpoint, "more") {
		got = append(got, string(r.Data))
	}
	if fmt.Sprint(got) != "[lost-answer plain]" {
		t.Errorf("stream holds %v, want [lost-answer plain]", got)
	}
	ev := proxy.Events()
	if len(ev) != 4 || proxy.Duplicates() != 1 || ev[2].Duplicates != 1 || proxy.Failed() != 3 {
		t.Errorf("events %+v: want 4, one forced duplicate, 3 failed", ev)
	}
	for _, e := range ev {
		if e.AccessKeyID != "AKIDFAULTPROXY" || e.SessionToken != "session-token" {
			t.Errorf("event %d: signed by %q with token %q", e.N, e.AccessKeyID, e.SessionToken)
		}
	}
}
