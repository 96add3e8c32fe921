package shardmap

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// pagedLister answers ListShards one shard per page, as a stream with many shards would.
type pagedLister struct {
	shards []types.Shard
	calls  int
	bad    bool // a page request that names the stream along with a NextToken
}

func (p *pagedLister) ListShards(_ context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	p.calls++
	i := 0
	if in.NextToken != nil {
		if in.StreamName != nil {
			p.bad = true
		}
		i = int((*in.NextToken)[0] - '0')
	}
	out := &kinesis.ListShardsOutput{Shards: p.shards[i : i+1]}
	if i+1 < len(p.shards) {
		out.NextToken = aws.String(string(rune('0' + i + 1)))
	}
	return out, nil
}

func shard(id, start, end string, closed bool) types.Shard {
	s := types.Shard{ShardId: aws.String(id), HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String(start), EndingHashKey: aws.String(end)},
		SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}}
	if closed {
		s.SequenceNumberRange.EndingSequenceNumber = aws.String("2")
	}
	return s
}

func TestRefreshKeepsOpenShardsOfEveryPage(t *testing.T) {
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1)).String()
	half := new(big.Int).Lsh(big.NewInt(1), 127)
	l := &pagedLister{shards: []types.Shard{
		shard("parent", "0", max, true),
		shard("hi", half.String(), max, false),
		shard("lo", "0", new(big.Int).Sub(half, big.NewInt(1)).String(), false),
	}}
	m := New(l, "s", Options{})
	if _, _, v, ok := m.Locate("x"); ok || v != 0 || m.Version() != 0 {
		t.Fatal("a map never refreshed locates keys")
	}
	if err := m.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l.calls != 3 || l.bad {
		t.Fatalf("%d ListShards calls (bad page request: %v), want 3 pages", l.calls, l.bad)
	}
	snap := m.Current()
	if len(snap.Shards) != 2 || snap.Shards[0].ID != "lo" || snap.Shards[1].ID != "hi" {
		t.Fatalf("shards %+v, want lo, hi (the closed parent left out)", snap.Shards)
	}
	for _, pk := range []string{"a", "b", "user-01", "user-02", "zzz"} {
		sum := md5.Sum([]byte(pk))
		want := "lo"
		if sum[0]&0x80 != 0 {
			want = "hi"
		}
		id, ehk, v, ok := m.Locate(pk)
		if !ok || id != want || v != snap.Version {
			t.Errorf("Locate(%q) = %s, version %d, ok %v; want %s, version %d", pk, id, v, ok, want, snap.Version)
		}
		// A record sent with that explicit hash key lands where the key would.
		if byKey, _ := snap.Target(pk, ""); byKey == nil || byKey.ID != want {
			t.Errorf("Target(%q, none) = %v, want %s", pk, byKey, want)
		}
		if byEHK, err := snap.Target("other", ehk); err != nil || byEHK == nil || byEHK.ID != want || snap.ByID(want) != byEHK {
			t.Errorf("Target(_, %s) = %v, %v; want %s", ehk, byEHK, err, want)
		}
		if h := KeyHash(pk); h.Hi != binary.BigEndian.Uint64(sum[:8]) {
			t.Errorf("KeyHash(%q) is not the MD5 read big-endian", pk)
		}
	}
	if _, err := snap.Target("x", "not a number"); err == nil {
		t.Error("an explicit hash key that is not a number has a target")
	}
	if snap.ByID("parent") != nil {
		t.Error("a closed shard is found by id")
	}
	if _, err := ParseHash(max); err != nil {
		t.Error(err)
	}
	if _, err := ParseHash(new(big.Int).Lsh(big.NewInt(1), 128).String()); err == nil {
		t.Error("2^128 parsed as a hash key")
	}
	// Ensure does not list again while the map is fresh, and does after Invalidate.
	_ = m.Ensure(context.Background())
	if l.calls != 3 {
		t.Errorf("Ensure listed shards again while the map is fresh")
	}
	m.Invalidate()
	_ = m.Ensure(context.Background())
	if l.calls != 6 || m.Current().Version != 1 {
		t.Errorf("after Invalidate: %d calls, version %d; want 6 calls, version 1 (same shards)", l.calls, m.Current().Version)
	}
}

// failingLister answers ListShards once, then fails.
type failingLister struct {
	pagedLister
}

func (f *failingLister) ListShards(ctx context.Context, in *kinesis.ListShardsInput, o ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	if f.calls > 0 {
		f.calls++
		return nil, errors.New("throttled")
	}
	return f.pagedLister.ListShards(ctx, in, o...)
}

// Once the map is due for a refresh and ListShards fails, the old map is kept and the
// refresh is not tried again at every Ensure (one per PutRecords): ListShards is not
// hammered and the warning is not logged per request.
func TestEnsureBacksOffAfterAFailedRefresh(t *testing.T) {
	l := &failingLister{pagedLister{shards: []types.Shard{shard("a", "0", "340282366920938463463374607431768211455", false)}}}
	m := New(l, "s", Options{RefreshInterval: time.Nanosecond})
	for i := range 10 {
		if err := m.Ensure(context.Background()); err != nil {
			t.Fatalf("Ensure %d: %v", i, err)
		}
	}
	if m.Current() == nil {
		t.Fatal("no map")
	}
	if l.calls != 2 {
		t.Fatalf("%d ListShards calls for 10 Ensure, want 2 (the first load, one failed refresh)", l.calls)
	}
}
