package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/internal/shardmap"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// TestOnceKeysFromLinesOneShardPerKey runs the agent with partition keys taken from the
// lines by a regexp against a 3-shard stream: every line arrives once, every aggregate holds
// only user records of the shard it was read from (what the KCL checks), each key's lines
// are on one shard and in the order written.
func TestOnceKeysFromLinesOneShardPerKey(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "keyedapp", 3)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "seq=%05d user=u%02d %s\n", i, i%40, padding)
	}
	if err := os.WriteFile(filepath.Join(logs, "app.log"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// Order per key is promised with one request in flight (README).
	body := strings.Replace(kinesisConfig(dir, endpoint, "keyedapp", `partition_key_regex: 'user=(\w+)'`),
		"max_in_flight: 4", "max_in_flight: 1", 1)
	cfg := writeConfig(t, dir, body)
	a := startAgent(t, endpoint, "run", "--config", cfg, "--once")
	if err := a.wait(t, 2*time.Minute); err != nil {
		t.Fatalf("kinship run --once: %v\n%s", err, a.stderr)
	}

	seen := make([]int, n)
	shardOf := map[string]string{}
	last := map[string]int{}
	for _, sr := range kinesalitetest.ReadShards(t, endpoint, "keyedapp") {
		sh := sr.Shard
		start, _ := shardmap.ParseHash(aws.ToString(sh.HashKeyRange.StartingHashKey))
		end, _ := shardmap.ParseHash(aws.ToString(sh.HashKeyRange.EndingHashKey))
		rng := shardmap.Shard{Start: start, End: end}
		for _, r := range sr.Records {
			urs, _, _ := aggregator.Deaggregate(r.Data, aws.ToString(r.PartitionKey))
			for _, u := range urs {
				if !rng.Contains(shardmap.KeyHash(u.PartitionKey)) {
					t.Fatalf("shard %s holds a user record of key %s, outside its range", aws.ToString(sh.ShardId), u.PartitionKey)
				}
				var seq int
				var user string
				if _, err := fmt.Sscanf(string(u.Data), "seq=%d user=%s", &seq, &user); err != nil || user != u.PartitionKey {
					t.Fatalf("user record %.40q with key %q", u.Data, u.PartitionKey)
				}
				seen[seq]++
				if s, ok := shardOf[user]; ok && s != aws.ToString(sh.ShardId) {
					t.Errorf("key %s on shards %s and %s", user, s, aws.ToString(sh.ShardId))
				}
				shardOf[user] = aws.ToString(sh.ShardId)
				if p, ok := last[user]; ok && seq <= p {
					t.Errorf("key %s: line %d after %d", user, seq, p)
				}
				last[user] = seq
			}
		}
	}
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("line %d arrived %d times", i, c)
		}
	}
	if len(shardOf) != 40 {
		t.Errorf("%d keys read back, want 40", len(shardOf))
	}
}
