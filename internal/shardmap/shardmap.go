// Package shardmap knows which open shard of a Kinesis stream a partition key goes to, as
// Kinesis decides it: the key's MD5 read as a 128-bit big-endian integer falls in exactly one
// open shard's [StartingHashKey, EndingHashKey] range.
//
// The map is the one place that knows where a key goes (Snapshot.Target, Find, ByID) and
// which map version a decision was made under (Snapshot.Version, Map.Version, Locate).
// Both sides of the spool use one Map: the aggregator packs only lines of one shard into an
// aggregate (Locate), and the shipper checks every aggregate against the map as it is when
// the record is sent (the stream may have been resharded while the aggregate sat in the
// spool) and re-splits it when needed. The map is refreshed with ListShards (every page, open
// shards only) when it is older than RefreshInterval, and at once after Invalidate (the
// shipper calls it when Kinesis put a record on another shard than predicted).
//
// Concurrency: every method is safe for concurrent use. Locate reads an immutable snapshot
// through an atomic pointer, so the aggregator's hot path takes no lock.
package shardmap

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Lister is the part of the Kinesis client the map uses.
type Lister interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// Hash is a 128-bit hash key, as Kinesis orders them.
type Hash struct{ Hi, Lo uint64 }

// Less orders hash keys numerically.
func (h Hash) Less(o Hash) bool { return h.Hi < o.Hi || (h.Hi == o.Hi && h.Lo < o.Lo) }

// KeyHash is the hash key Kinesis derives from a partition key.
func KeyHash(pk string) Hash { return hashOf(md5.Sum([]byte(pk))) }

// KeyHashBytes is KeyHash of a key read from bytes (an aggregate's key table), without
// copying it to a string.
func KeyHashBytes(pk []byte) Hash { return hashOf(md5.Sum(pk)) }

func hashOf(sum [md5.Size]byte) Hash {
	return Hash{binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:])}
}

// ParseHash reads a decimal hash key (as ListShards and ExplicitHashKey write them).
func ParseHash(s string) (Hash, error) {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok || n.Sign() < 0 || n.BitLen() > 128 {
		return Hash{}, fmt.Errorf("shardmap: %q is not a 128-bit decimal hash key", s)
	}
	var b [16]byte
	n.FillBytes(b[:])
	return Hash{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}, nil
}

// Shard is one open shard.
type Shard struct {
	ID         string
	Start, End Hash   // inclusive
	StartKey   string // Start in decimal: the explicit hash key that sends a record here
}

// Contains reports whether h lies in the shard's range.
func (s *Shard) Contains(h Hash) bool { return !h.Less(s.Start) && !s.End.Less(h) }

// Snapshot is the map at one moment; it never changes.
type Snapshot struct {
	Shards  []Shard // open shards ordered by Start
	Version uint64  // grows by one at every refresh that changed the shards
}

// Find returns the shard whose range holds h, or nil (a gap: the map is mid-reshard).
func (s *Snapshot) Find(h Hash) *Shard {
	i, _ := slices.BinarySearchFunc(s.Shards, h, func(sh Shard, h Hash) int {
		if h.Less(sh.Start) {
			return 1
		}
		return -1
	})
	// i is the first shard starting after h; the one before it may hold h.
	if i == 0 {
		return nil
	}
	if sh := &s.Shards[i-1]; sh.Contains(h) {
		return sh
	}
	return nil
}

// Target returns the shard a record goes to, as Kinesis places it: by its explicit hash
// key when it has one (ehk not empty), else by the MD5 of its partition key. nil is a gap
// (mid-reshard); an error says ehk is not a hash key.
func (s *Snapshot) Target(pk, ehk string) (*Shard, error) {
	if ehk == "" {
		return s.Find(KeyHash(pk)), nil
	}
	h, err := ParseHash(ehk)
	if err != nil {
		return nil, err
	}
	return s.Find(h), nil
}

// ByID returns the open shard named id, nil when it is not open in this snapshot.
func (s *Snapshot) ByID(id string) *Shard {
	for i := range s.Shards {
		if s.Shards[i].ID == id {
			return &s.Shards[i]
		}
	}
	return nil
}

// Options configure a Map.
type Options struct {
	RefreshInterval time.Duration // [1m]
	Logger          *slog.Logger
}

// Map is the shard map of one stream.
type Map struct {
	api    Lister
	stream string
	opts   Options
	log    *slog.Logger

	cur      atomic.Pointer[Snapshot]
	stale    atomic.Bool
	loadedAt atomic.Int64 // Unix ns of the last successful refresh
	failedAt atomic.Int64 // Unix ns of the last failed refresh in Ensure while an old map was kept

	refreshMu sync.Mutex // one ListShards walk at a time
}

// New returns an empty map of stream (a name or an ARN); nothing is listed until Refresh or
// Ensure.
func New(api Lister, stream string, opts Options) *Map {
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Map{api: api, stream: stream, opts: opts, log: log}
}

// SetLogger replaces the logger given in Options; call it before the map is used.
func (m *Map) SetLogger(l *slog.Logger) {
	if l != nil {
		m.log = l
	}
}

// Current returns the latest snapshot, nil before the first successful refresh.
func (m *Map) Current() *Snapshot { return m.cur.Load() }

// Version is the version of the current snapshot, 0 before the first successful refresh.
func (m *Map) Version() uint64 {
	if s := m.cur.Load(); s != nil {
		return s.Version
	}
	return 0
}

// Locate tells where a partition key goes under the current snapshot: the shard's id and
// the explicit hash key that sends a record there, with the snapshot's version, read from the
// same snapshot so that a refresh in between cannot pair one map's shard with the other's
// version. ok is false before the first refresh (version 0) and in a gap. It is the
// aggregator's ShardLocator.
func (m *Map) Locate(pk string) (id, ehk string, version uint64, ok bool) {
	s := m.cur.Load()
	if s == nil {
		return "", "", 0, false
	}
	sh := s.Find(KeyHash(pk))
	if sh == nil {
		return "", "", s.Version, false
	}
	return sh.ID, sh.StartKey, s.Version, true
}

// refreshRetry is how long Ensure keeps an old map after a failed refresh before it lists the
// shards again: without it, every PutRecords of an outage of ListShards (throttled, denied)
// would call ListShards and log a line.
const refreshRetry = 10 * time.Second

// Invalidate makes the next Ensure refresh the map.
func (m *Map) Invalidate() { m.stale.Store(true) }

// Ensure refreshes the map when it was never loaded, was invalidated or is older than the
// refresh interval. It returns an error only when there is no map at all to work with.
func (m *Map) Ensure(ctx context.Context) error {
	if m.cur.Load() != nil && !m.stale.Load() &&
		time.Since(time.Unix(0, m.loadedAt.Load())) < m.opts.RefreshInterval {
		return nil
	}
	if m.cur.Load() != nil && time.Since(time.Unix(0, m.failedAt.Load())) < refreshRetry {
		return nil // the last try failed just now: Ensure runs before every PutRecords
	}
	err := m.Refresh(ctx)
	if err != nil && m.cur.Load() != nil {
		// An old map still packs correctly most of the time, and the shipper re-splits
		// against it: better than stopping. Try again in refreshRetry.
		m.failedAt.Store(time.Now().UnixNano())
		m.log.Warn("shard map refresh failed; using the previous map", "stream", m.stream, "err", err)
		return nil
	}
	return err
}

// Refresh lists the stream's open shards now.
func (m *Map) Refresh(ctx context.Context) error {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	m.stale.Store(false)
	var shards []Shard
	in := &kinesis.ListShardsInput{}
	if strings.HasPrefix(m.stream, "arn:") {
		in.StreamARN = aws.String(m.stream)
	} else {
		in.StreamName = aws.String(m.stream)
	}
	for page := 0; ; page++ {
		out, err := m.api.ListShards(ctx, in)
		if err != nil {
			m.stale.Store(true)
			return fmt.Errorf("shardmap: stream %s: ListShards: %w", m.stream, err)
		}
		for _, sh := range out.Shards {
			// A closed shard (it has an ending sequence number) takes no more writes.
			if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
				continue
			}
			if sh.HashKeyRange == nil {
				continue
			}
			start, err := ParseHash(aws.ToString(sh.HashKeyRange.StartingHashKey))
			if err == nil {
				var end Hash
				if end, err = ParseHash(aws.ToString(sh.HashKeyRange.EndingHashKey)); err == nil {
					shards = append(shards, Shard{ID: aws.ToString(sh.ShardId), Start: start, End: end,
						StartKey: aws.ToString(sh.HashKeyRange.StartingHashKey)})
					continue
				}
			}
			m.stale.Store(true)
			return fmt.Errorf("shardmap: stream %s: shard %s: %w", m.stream, aws.ToString(sh.ShardId), err)
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		// With a NextToken, the stream must not be named again.
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	if len(shards) == 0 {
		m.stale.Store(true)
		return errors.New("shardmap: stream " + m.stream + ": no open shards")
	}
	slices.SortFunc(shards, func(a, b Shard) int {
		if a.Start.Less(b.Start) {
			return -1
		}
		if b.Start.Less(a.Start) {
			return 1
		}
		return 0
	})
	old := m.cur.Load()
	snap := &Snapshot{Shards: shards, Version: 1}
	if old != nil {
		snap.Version = old.Version
		if !sameShards(old.Shards, shards) {
			snap.Version++
			m.log.Info("stream resharded; shard map updated", "stream", m.stream, "open_shards", len(shards))
		}
	}
	m.cur.Store(snap)
	m.loadedAt.Store(time.Now().UnixNano())
	return nil
}

func sameShards(a, b []Shard) bool {
	return slices.EqualFunc(a, b, func(x, y Shard) bool { return x.ID == y.ID && x.Start == y.Start && x.End == y.End })
}
