package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

const lastHashKey = "340282366920938463463374607431768211455"

// consumeStream puts, on a two-shard kinesalite stream: an aggregate of two lines from host-a
// on shard 0, a plain record that is not UTF-8 on shard 1, and a little later one plain line
// on each shard. It returns the endpoint and the sequence numbers of the four records.
// (A later record on every shard matters: kinesalite never answers an AT_TIMESTAMP
// GetShardIterator on a shard with no record at or after the time, where Kinesis gives an
// iterator at the tip.)
func consumeStream(t *testing.T) (endpoint string, seqs []string) {
	endpoint = kinesalitetest.Start(t)
	for _, kv := range kinesalitetest.Env(endpoint) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	kinesalitetest.CreateStream(t, endpoint, "s", 2)
	c := kinesalitetest.Client(endpoint)
	put := func(pk, ehk string, data []byte) {
		out, err := c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String("s"),
			PartitionKey: aws.String(pk), ExplicitHashKey: aws.String(ehk), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, aws.ToString(out.SequenceNumber))
	}
	put("host-a", "1", aggregator.EncodeAggregate("host-a", "1", [][]byte{[]byte("GET /a from host-a"), []byte("POST /b from host-a")}))
	put("host-b", lastHashKey, []byte{0xff, 0xfe, 'x'})
	// Arrival times have millisecond resolution: keep the last record apart for --from.
	time.Sleep(50 * time.Millisecond)
	put("host-c", lastHashKey, []byte("a later line from host-c"))
	put("host-d", "1", []byte("a later line from host-d"))
	return endpoint, seqs
}

func runConsume(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runMain(append([]string{"consume", "--stream", "s"}, args...), &out, &errOut)
	if errOut.Len() > 0 {
		t.Logf("stderr: %s", errOut.String())
	}
	return out.String(), code
}

func TestConsumeJSONAgainstKinesalite(t *testing.T) {
	endpoint, seqs := consumeStream(t)
	out, code := runConsume(t, "--endpoint", endpoint, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	var recs []consumedRecord
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r consumedRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 5 {
		t.Fatalf("%d records, want 5:\n%s", len(recs), out)
	}
	bySeq := map[string][]consumedRecord{}
	for _, r := range recs {
		bySeq[r.SequenceNumber] = append(bySeq[r.SequenceNumber], r)
		if r.ArrivalTime.IsZero() || time.Since(r.ArrivalTime) > time.Hour {
			t.Errorf("arrival time %v", r.ArrivalTime)
		}
	}
	agg := bySeq[seqs[0]]
	if len(agg) != 2 || *agg[0].Data != "GET /a from host-a" || *agg[1].Data != "POST /b from host-a" ||
		agg[0].SubSequenceNumber != 0 || agg[1].SubSequenceNumber != 1 || !agg[1].Aggregated ||
		agg[1].PartitionKey != "host-a" || agg[1].ExplicitHashKey != "1" || agg[1].ShardID != "shardId-000000000000" {
		t.Errorf("aggregate's user records: %+v", agg)
	}
	bin := bySeq[seqs[1]]
	if len(bin) != 1 || bin[0].Data != nil || !bytes.Equal(bin[0].DataBase64, []byte{0xff, 0xfe, 'x'}) ||
		bin[0].Aggregated || bin[0].PartitionKey != "host-b" || bin[0].ShardID != "shardId-000000000001" {
		t.Errorf("non-UTF-8 record: %+v", bin)
	}
	if !strings.Contains(out, `"data_base64":"//54"`) {
		t.Errorf("non-UTF-8 data not base64 in the output:\n%s", out)
	}

	// --from the later records' arrival time: only they (AT_TIMESTAMP), from both shards.
	from := bySeq[seqs[2]][0].ArrivalTime.Format(time.RFC3339Nano)
	out, code = runConsume(t, "--endpoint", endpoint, "--from", from)
	got := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(got)
	if code != 0 || strings.Join(got, "|") != "a later line from host-c|a later line from host-d" {
		t.Errorf("--from %s: exit %d, printed %q, want only the later lines", from, code, out)
	}
}

func TestConsumeShardAndGrepAgainstKinesalite(t *testing.T) {
	endpoint, _ := consumeStream(t)
	out, code := runConsume(t, "--endpoint", endpoint, "--shard", "1")
	if code != 0 || out != "\xff\xfex\na later line from host-c\n" { // one shard: in order
		t.Errorf("--shard 1: exit %d, printed %q", code, out)
	}
	out, code = runConsume(t, "--endpoint", endpoint, "--grep", `from host-a$`)
	got := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(got) != 2 || got[0] != "GET /a from host-a" || got[1] != "POST /b from host-a" {
		t.Errorf("--grep: exit %d, printed %q", code, out)
	}
	out, code = runConsume(t, "--endpoint", endpoint, "--shard", "shardId-000000000000", "--grep", "host-c")
	if code != 0 || out != "" {
		t.Errorf("--shard 0 --grep host-c: exit %d, printed %q", code, out)
	}
	if out, code = runConsume(t, "--endpoint", endpoint, "--shard", "7"); code != 1 {
		t.Errorf("--shard 7 of a two-shard stream: exit %d, printed %q", code, out)
	}
}

func TestConsumeFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--from", "yesterday"},
		{"--format", "xml"},
		{"--grep", "("},
	} {
		if _, code := runConsume(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// "What does host X send right now": --from latest --follow --grep prints the matching
// records put after it started, and only those, until it is stopped.
func TestConsumeFollowGrepAgainstKinesalite(t *testing.T) {
	endpoint, _ := consumeStream(t)
	c := kinesalitetest.Client(endpoint)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- consume(ctx, c, consumeOptions{stream: "s", iterator: "LATEST", follow: true, limit: 100,
			grep: regexp.MustCompile(`host-x`), format: "json", idle: 20 * time.Millisecond}, &out)
	}()
	// LATEST starts after what is in the stream when the iterator is made: keep putting
	// until one record got through, then check that only host-x's lines were printed.
	for i := 0; !strings.Contains(out.String(), "host-x"); i++ {
		select {
		case err := <-done:
			t.Fatalf("consume ended: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		for _, host := range []string{"host-x", "host-y"} {
			if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(host),
				Data: []byte(fmt.Sprintf("line %d from %s", i, host))}); err != nil {
				t.Fatal(err)
			}
		}
		if i > 200 {
			t.Fatalf("nothing printed after %d puts", i)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("consume: %v, want context.Canceled", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r consumedRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.PartitionKey != "host-x" || !strings.HasSuffix(*r.Data, "from host-x") {
			t.Errorf("printed %q (%v), want only host-x's lines", line, err)
		}
	}
}
