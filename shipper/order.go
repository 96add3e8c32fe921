package shipper

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/internal/shardmap"
)

// ShardRouter tells the shipper which shards a record will be written to, so that it can
// keep each shard's records in order (Options.Shards). Safe for concurrent use.
type ShardRouter interface {
	// Route appends to dst the shards rec lands on when sent now, under the map of version
	// version (several when the destination re-splits it: split). ok is false when the map
	// cannot tell (not known yet, or a gap mid-reshard): such a record is sent alone, with
	// nothing else in flight.
	Route(dst []string, rec *Record) (ids []string, version uint64, split, ok bool)
	// Version is the version of the current map; holds computed under another one are stale.
	Version() uint64
}

// NewShardRouter routes records by m as ShardAware sends them (it re-splits with the same
// map and the same rules).
func NewShardRouter(m *shardmap.Map) ShardRouter { return mapRouter{m} }

type mapRouter struct{ m *shardmap.Map }

func (r mapRouter) Version() uint64 {
	if snap := r.m.Current(); snap != nil {
		return snap.Version
	}
	return 0
}

func (r mapRouter) Route(dst []string, rec *Record) ([]string, uint64, bool, bool) {
	snap := r.m.Current()
	if snap == nil {
		return dst, 0, false, false
	}
	var target *shardmap.Shard
	if rec.ExplicitHashKey != "" {
		h, err := shardmap.ParseHash(rec.ExplicitHashKey)
		if err != nil {
			return dst, snap.Version, false, false
		}
		target = snap.Find(h)
	} else {
		target = snap.Find(shardmap.KeyHash(rec.PartitionKey))
	}
	if target == nil {
		return dst, snap.Version, false, false
	}
	if rec.ExplicitHashKey == "" && !aggregator.HasMagic(rec.Data) {
		return append(dst, target.ID), snap.Version, false, true
	}
	// The common case, cheaply: every key of the aggregate's key table hashes into the
	// target shard, so ShardAware sends it as it is. This reads the key table only; the full
	// (MD5-checked) decode is left to the rare aggregate that may need re-splitting.
	if keysIn(rec.Data, snap, target) {
		return append(dst, target.ID), snap.Version, false, true
	}
	e := types.PutRecordsRequestEntry{Data: rec.Data, PartitionKey: aws.String(rec.PartitionKey)}
	if rec.ExplicitHashKey != "" {
		e.ExplicitHashKey = aws.String(rec.ExplicitHashKey)
	}
	parts, ids := splitForShards(snap, e)
	if parts == nil {
		if ids[0] == "" {
			return dst, snap.Version, false, false
		}
		return append(dst, ids[0]), snap.Version, false, true
	}
	for _, id := range ids {
		if !slices.Contains(dst, id) {
			dst = append(dst, id)
		}
	}
	return dst, snap.Version, true, true
}

// keysIn reports whether data is an aggregate whose partition keys all hash into target and
// that has no explicit hash key table (user records then go by their partition keys). False
// means "look closer", not "misplaced".
func keysIn(data []byte, snap *shardmap.Snapshot, target *shardmap.Shard) bool {
	const checksumLen = md5.Size
	if !aggregator.HasMagic(data) || len(data) < 4+checksumLen {
		return false
	}
	b := data[4 : len(data)-checksumLen]
	keys := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if typ != protowire.BytesType {
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return false
			}
			b = b[m:]
			continue
		}
		v, m := protowire.ConsumeBytes(b)
		if m < 0 {
			return false
		}
		b = b[m:]
		switch num {
		case 1: // partition_key_table
			sum := md5.Sum(v)
			h := shardmap.Hash{Hi: binary.BigEndian.Uint64(sum[:8]), Lo: binary.BigEndian.Uint64(sum[8:])}
			if !target.Contains(h) {
				return false
			}
			keys++
		case 2: // explicit_hash_key_table: user records may go by these instead
			return false
		}
	}
	return keys > 0
}

// Default look-ahead bounds of a keyed flow: how far past a held-back record the shipper
// reads the spool to keep other shards busy.
const (
	defaultLookAheadBytes = 16 << 20
	lookAheadRequests     = 4 // times MaxRecords
)

// order is the hold-back state of a flow whose records must stay in order per shard
// (Options.Shards). The queue is Run's alone; the holds are shared with the workers, which
// release a record's shards once the destination accepted it.
type order struct {
	r        ShardRouter
	maxBytes int
	maxItems int

	mu         sync.Mutex
	busy       map[string]struct{} // shards with a record sent (or waiting for its retry) and not yet accepted
	held       map[uint64]hold     // by seq: what each such record holds
	version    uint64              // map version the holds were computed under
	exclusive  bool                // a record of unknown shards is out: nothing else may go
	cancelWait context.CancelFunc  // set while Run waits in Source.Next for want of anything to send
	wake       chan struct{}       // cap 1: a hold was released since Run last looked

	queue      []queued // read from the Source, not yet sent, in Source order
	queueBytes int
}

type hold struct {
	ids       []string
	exclusive bool
	split     bool // counted in kinship_resplit_records_total
}

type queued struct {
	it      Item
	ids     []string
	version uint64
	routed  bool
	split   bool
	ok      bool
}

func newOrder(r ShardRouter, lim Limits, maxBytes int) *order {
	if maxBytes <= 0 {
		maxBytes = defaultLookAheadBytes
	}
	return &order{r: r, maxBytes: max(maxBytes, lim.MaxRequestBytes), maxItems: lookAheadRequests * lim.MaxRecords,
		busy: map[string]struct{}{}, held: map[uint64]hold{}, wake: make(chan struct{}, 1)}
}

// room reports whether the look-ahead may read another item from the Source.
func (o *order) room() bool { return len(o.queue) < o.maxItems && o.queueBytes < o.maxBytes }

func (o *order) push(it Item) {
	o.queue = append(o.queue, queued{it: it})
	o.queueBytes += it.Record.size()
}

// release frees the shards seq held; called by a worker once the record was accepted.
func (o *order) release(seq uint64) {
	o.mu.Lock()
	h, ok := o.held[seq]
	if ok {
		delete(o.held, seq)
		for _, id := range h.ids {
			delete(o.busy, id)
		}
		if h.exclusive {
			o.exclusive = false
		}
	}
	cancel := o.cancelWait
	o.mu.Unlock()
	if !ok {
		return
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
	if cancel != nil {
		cancel() // Run waits in Source.Next: a queued record may go now
	}
}

// scan is one pass over queue[from:] that moves into b what may be sent now: at most one
// record per shard per request, none for a shard that has a record out, none that would
// overtake an earlier queued record of its shard (blocked collects their shards; all
// blocks everything after a record of unknown shards). It compacts the queue and returns
// its new length: the items scanned. full: b may take nothing more. Run's goroutine only.
func (s *Shipper) scan(lim Limits, b *batch, from int, blocked map[string]struct{}, all *bool) (int, bool) {
	o := s.ord
	o.mu.Lock()
	defer o.mu.Unlock()
	cur := o.r.Version()
	q := o.queue
	w := from
	for r := from; r < len(q); r++ {
		if !s.take(lim, b, &q[r], cur, blocked, all) {
			q[w] = q[r]
			w++
		}
	}
	clear(q[w:])
	o.queue = q[:w]
	full := len(b.items) > 0 && (b.tooLarge || len(b.items) >= lim.MaxRecords || o.exclusive)
	return w, full
}

// take moves e into b when it may go now; o.mu held.
func (s *Shipper) take(lim Limits, b *batch, e *queued, cur uint64, blocked map[string]struct{}, all *bool) bool {
	o := s.ord
	if *all || b.tooLarge || len(b.items) >= lim.MaxRecords || (len(b.items) > 0 && o.exclusive) {
		return false
	}
	if !e.routed || e.version != cur {
		e.ids, e.version, e.split, e.ok = o.r.Route(e.ids[:0], &e.it.Record)
		e.routed = true
	}
	block := func() bool {
		if !e.ok {
			*all = true
		}
		for _, id := range e.ids {
			blocked[id] = struct{}{}
		}
		return false
	}
	switch {
	case o.exclusive:
		return block()
	case !e.ok && len(o.held) > 0:
		return block()
	case len(o.held) > 0 && e.version != o.version:
		// The map changed: the holds out were computed under the old one, so nothing goes
		// until they are all accepted (then everything is routed anew).
		return block()
	}
	for _, id := range e.ids {
		if _, ok := o.busy[id]; ok {
			return block()
		}
		if _, ok := blocked[id]; ok {
			return block()
		}
	}
	sz := e.it.Record.size()
	switch {
	case sz > lim.MaxRecordBytes && len(b.items) > 0:
		return block()
	case sz > lim.MaxRecordBytes:
		b.tooLarge = true
		s.noteTooLarge(e.it, lim)
	case b.bytes+sz > lim.MaxRequestBytes:
		return block()
	}
	b.items = append(b.items, e.it)
	b.bytes += sz
	o.queueBytes -= sz
	h := hold{ids: slices.Clone(e.ids), exclusive: !e.ok, split: e.split}
	for _, id := range h.ids {
		o.busy[id] = struct{}{}
	}
	o.held[e.it.Seq] = h
	o.version = e.version
	if h.exclusive {
		o.exclusive = true
	}
	if e.split {
		s.m.Resplits.Inc()
	}
	return true
}

// countResplits counts, once each, records about to be sent again that the current map
// re-splits: the map was refreshed after they were first sent (ShardAware noticed a
// reshard), and the retry goes out in parts. Their holds stay as they are: nothing new is
// sent until every record routed under the old map was accepted. Called by a worker.
func (s *Shipper) countResplits(items []Item) {
	o := s.ord
	var ids []string
	for i := range items {
		seq := items[i].Seq
		o.mu.Lock()
		h, ok := o.held[seq]
		o.mu.Unlock()
		if !ok || h.split {
			continue
		}
		var split bool
		ids, _, split, _ = o.r.Route(ids[:0], &items[i].Record)
		if !split {
			continue
		}
		o.mu.Lock()
		if h, ok := o.held[seq]; ok {
			h.split = true
			o.held[seq] = h
		}
		o.mu.Unlock()
		s.m.Resplits.Inc()
	}
}

// fillOrdered is fill for keyed flows: it sends what the holds allow, reads ahead in the
// Source (bounded) past records that must wait, and blocks only when nothing may go.
func (s *Shipper) fillOrdered(ctx context.Context, lim Limits, b *batch) error {
	o := s.ord
	blocked := map[string]struct{}{}
	all := false
	scanned := 0
	var lingerCtx context.Context
	for {
		var full bool
		scanned, full = s.scan(lim, b, scanned, blocked, &all)
		if full {
			return nil
		}
		room := o.room()
		if room && s.src.Pending() > 0 {
			it, err := s.src.Next(ctx)
			if err != nil {
				return err
			}
			o.push(it)
			continue
		}
		if len(b.items) > 0 {
			if s.opts.Linger <= 0 || !room {
				return nil
			}
			if lingerCtx == nil {
				var stop context.CancelFunc
				lingerCtx, stop = context.WithTimeout(ctx, s.opts.Linger)
				defer stop()
			}
			it, err := s.src.Next(lingerCtx)
			if err != nil {
				if ctx.Err() == nil && lingerCtx.Err() != nil {
					return nil // lingered long enough: ship what we have
				}
				return err
			}
			o.push(it)
			continue
		}
		// Nothing may go now: wait for a new item (while the look-ahead has room) or for a
		// hold to be released, then look at the whole queue again.
		released, err := s.waitOrdered(ctx, room)
		if err != nil {
			return err
		}
		if released {
			clear(blocked)
			all, scanned = false, 0
		}
	}
}

// waitOrdered blocks until an item arrives (pushed) or a hold is released (released true).
func (s *Shipper) waitOrdered(ctx context.Context, room bool) (released bool, err error) {
	o := s.ord
	if !room {
		select {
		case <-o.wake:
			return true, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	o.mu.Lock()
	o.cancelWait = cancel
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.cancelWait = nil
		o.mu.Unlock()
	}()
	select {
	case <-o.wake: // released between the scan and now
		return true, nil
	default:
	}
	if s.opts.Idle != nil && len(o.queue) == 0 && s.src.Pending() == 0 {
		s.waiting.Store(true)
		if s.inFlight.Load() == 0 {
			s.idle()
		}
	}
	it, err := s.src.Next(wctx)
	s.waiting.Store(false)
	if err != nil {
		if ctx.Err() != nil {
			return false, err
		}
		if wctx.Err() != nil {
			select {
			case <-o.wake:
			default:
			}
			return true, nil
		}
		return false, err
	}
	o.push(it)
	return false, nil
}
