// Package kinesalitetest starts a real Kinesis API implementation (kinesalite, from the npm
// registry through internal/testenv/node/package-lock.json) on loopback for tests, and builds SDK clients
// for it with dummy static credentials so that no test ever reaches AWS or the instance
// metadata service.
package kinesalitetest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// NodeDir returns the directory holding the project's npm test peers (internal/testenv/node), and fails
// the test with the install command when its node_modules are missing. It never skips: a
// test that needs kinesalite and silently did not run would pass in CI without testing.
func NodeDir(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("kinesalitetest: %v", err)
	}
	dir := filepath.Join(root, "internal", "testenv", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kinesalite")); err != nil {
		t.Fatalf("kinesalitetest: kinesalite is not installed (%v); run `npm ci --prefix internal/testenv/node` or `make test`", err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("kinesalitetest: node is not on PATH: %v", err)
	}
	return dir
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Start launches a fresh kinesalite on 127.0.0.1 and a free port and returns its endpoint
// URL. The process is stopped when the test ends. A fresh instance per test matters:
// kinesalite keeps everything in memory and slows down as it fills.
func Start(t testing.TB) string {
	t.Helper()
	dir := NodeDir(t)
	cmd := exec.Command("node", filepath.Join(dir, "kinesalite.js"))
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("kinesalitetest: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("kinesalitetest: %v", err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("kinesalitetest: start node: %v", err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	type ready struct {
		Port int `json:"port"`
	}
	got := make(chan ready, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			var r ready
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				got <- r
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case r := <-got:
		return fmt.Sprintf("http://127.0.0.1:%d", r.Port)
	case <-time.After(30 * time.Second):
		t.Fatalf("kinesalitetest: kinesalite did not report its port within 30s")
		return ""
	}
}

// Env returns the environment variables that point the AWS SDK (and the kinship binary) at
// endpoint with dummy credentials and no instance metadata lookups.
func Env(endpoint string) []string {
	return []string{
		"AWS_ACCESS_KEY_ID=kinshiptest",
		"AWS_SECRET_ACCESS_KEY=kinshiptest",
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_KINESIS=" + endpoint,
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
}

// Client returns a Kinesis client for endpoint with dummy static credentials.
func Client(endpoint string) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("kinshiptest", "kinshiptest", ""),
	})
}

// CreateStream creates stream with the given number of shards and waits until it is ACTIVE.
func CreateStream(t testing.TB, endpoint, stream string, shards int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := Client(endpoint)
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(int32(shards))}); err != nil {
		t.Fatalf("kinesalitetest: create stream %s: %v", stream, err)
	}
	for {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kinesalitetest: stream %s not active: %v", stream, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ReadAll returns every record of every shard of stream, from the start, shard by shard.
// Call it once everything was put (see ReadShards).
func ReadAll(t testing.TB, endpoint, stream string) []types.Record {
	t.Helper()
	var recs []types.Record
	for _, sr := range ReadShards(t, endpoint, stream) {
		recs = append(recs, sr.Records...)
	}
	return recs
}

// ShardRecords is one shard of a stream and its records, from the start.
type ShardRecords struct {
	Shard   types.Shard
	Records []types.Record
}

// ReadShards returns every shard of stream in ListShards order (parents before children),
// each with its records from the start. Call it once everything was put: an empty page is
// taken as the end of a shard. Pages are small because one huge GetRecords response can
// crash kinesalite.
func ReadShards(t testing.TB, endpoint, stream string) []ShardRecords {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := Client(endpoint)
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("kinesalitetest: list shards of %s: %v", stream, err)
	}
	var out []ShardRecords
	for _, sh := range shards.Shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
			ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatalf("kinesalitetest: shard iterator %s: %v", aws.ToString(sh.ShardId), err)
		}
		sr := ShardRecords{Shard: sh}
		for iter := it.ShardIterator; iter != nil; {
			page, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(100)})
			if err != nil {
				t.Fatalf("kinesalitetest: get records %s: %v", aws.ToString(sh.ShardId), err)
			}
			if len(page.Records) == 0 {
				break
			}
			sr.Records = append(sr.Records, page.Records...)
			iter = page.NextShardIterator
		}
		out = append(out, sr)
	}
	return out
}
