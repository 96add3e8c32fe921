package shipper

import (
	"context"
	"slices"
	"sync"

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

func (r mapRouter) Version() uint64 { return r.m.Version() }

func (r mapRouter) Route(dst []string, rec *Record) ([]string, uint64, bool, bool) {
	snap := r.m.Current()
	if snap == nil {
		return dst, 0, false, false
	}
	// The common cases (a plain record, or an aggregate whose keys all hash into its target)
	// cost a look at the key table; only an aggregate that may need re-splitting is decoded.
	target, exact := place(snap, rec.PartitionKey, rec.ExplicitHashKey, rec.Data)
	if exact {
		if target == nil {
			return dst, snap.Version, false, false
		}
		return append(dst, target.ID), snap.Version, false, true
	}
	parts, ids := splitForShards(snap, rec.PartitionKey, rec.ExplicitHashKey, rec.Data)
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

// Default look-ahead bounds of a keyed flow: how far past a held-back record the shipper
// reads the spool to keep other shards busy.
const (
	defaultLookAheadBytes = 16 << 20
	lookAheadRequests     = 4 // times MaxRecords
)

// order is the hold-back state of a flow whose records must stay in order per shard
// (Options.Shards). The look-ahead is Run's alone; the holds are shared with the workers,
// which release a record's shards once the destination accepted it.
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

	// The look-ahead: records read from the Source and not sent yet. heads indexes them per
	// shard, so that finding what may go costs one look per shard, not one per record.
	queue      []*queued            // Source order; taken entries are dropped lazily
	count      int                  // entries of queue not taken
	queueBytes int                  // their bytes
	nextPos    uint64               // Source order of the next record read
	heads      map[string][]*queued // per shard, its queued records in Source order
	unknown    []*queued            // queued records the map cannot place, in Source order
	routed     uint64               // the map version heads was built under
	stale      bool                 // a record was routed under another version: rebuild heads
}

type hold struct {
	ids       []string
	exclusive bool
	split     bool // counted in kinship_resplit_records_total
}

type queued struct {
	it    Item
	pos   uint64
	ids   []string
	split bool
	ok    bool
	taken bool
}

func newOrder(r ShardRouter, lim Limits, maxBytes int) *order {
	if maxBytes <= 0 {
		maxBytes = defaultLookAheadBytes
	}
	return &order{r: r, maxBytes: max(maxBytes, lim.MaxRequestBytes), maxItems: lookAheadRequests * lim.MaxRecords,
		busy: map[string]struct{}{}, held: map[uint64]hold{}, wake: make(chan struct{}, 1),
		heads: map[string][]*queued{}}
}

// room reports whether the look-ahead may read another item from the Source.
func (o *order) room() bool { return o.count < o.maxItems && o.queueBytes < o.maxBytes }

// push adds an item read from the Source to the look-ahead. o.mu held.
func (o *order) push(it Item) *queued {
	e := &queued{it: it, pos: o.nextPos}
	o.nextPos++
	o.queue = append(o.queue, e)
	o.count++
	o.queueBytes += it.Record.size()
	o.route(e)
	return e
}

func (o *order) route(e *queued) {
	var v uint64
	e.ids, v, e.split, e.ok = o.r.Route(e.ids[:0], &e.it.Record)
	if v != o.routed {
		o.stale = true
	}
	if !e.ok {
		o.unknown = append(o.unknown, e)
		return
	}
	for _, id := range e.ids {
		o.heads[id] = append(o.heads[id], e)
	}
}

// rebuild routes every queued record again under the current map.
func (o *order) rebuild(cur uint64) {
	clear(o.heads)
	clear(o.unknown)
	o.unknown = o.unknown[:0]
	o.routed, o.stale = cur, false
	w := 0
	for _, e := range o.queue {
		if e.taken {
			continue
		}
		o.queue[w] = e
		w++
		o.route(e)
	}
	clear(o.queue[w:])
	o.queue = o.queue[:w]
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

// full reports whether b may take nothing more. o.mu held.
func (o *order) full(lim Limits, b *batch) bool {
	return len(b.items) > 0 && (b.tooLarge || len(b.items) >= lim.MaxRecords || o.exclusive)
}

// scan moves into b what may be sent now: at most one record per shard per request, none
// for a shard that has a record out, none that would overtake an earlier queued record of
// its shard, nothing after a record of unknown shards (which goes alone, once nothing else
// is out), and nothing routed under a new map while records routed under the old one are
// out. With only set, it looks at that record alone (just read: the others were looked at
// since the last release). It reports whether b is full. Run's goroutine only.
func (s *Shipper) scan(lim Limits, b *batch, only *queued) bool {
	o := s.ord
	o.mu.Lock()
	defer o.mu.Unlock()
	if cur := o.r.Version(); o.stale || cur != o.routed {
		o.rebuild(cur)
		only = nil
	}
	if o.exclusive || (len(o.held) > 0 && o.version != o.routed) {
		return o.full(lim, b)
	}
	limit := ^uint64(0)
	if len(o.unknown) > 0 {
		u := o.unknown[0]
		if len(o.held) == 0 && len(b.items) == 0 && o.oldest() == u {
			s.takeQueued(lim, b, u)
			return true
		}
		limit = u.pos
	}
	if only != nil {
		if only.ok && !only.taken && only.pos < limit {
			s.tryTake(lim, b, only)
		}
		return o.full(lim, b)
	}
	for _, fifo := range o.heads {
		if o.full(lim, b) {
			break
		}
		if e := fifo[0]; e.pos < limit {
			s.tryTake(lim, b, e)
		}
	}
	return o.full(lim, b)
}

// oldest is the first queued record not taken. o.mu held.
func (o *order) oldest() *queued {
	for len(o.queue) > 0 && o.queue[0].taken {
		o.queue[0] = nil
		o.queue = o.queue[1:]
	}
	if len(o.queue) == 0 {
		return nil
	}
	return o.queue[0]
}

// tryTake takes e when it heads the queue of each of its shards, none of them is busy and it
// fits the request. o.mu held.
func (s *Shipper) tryTake(lim Limits, b *batch, e *queued) {
	o := s.ord
	for _, id := range e.ids {
		if _, busy := o.busy[id]; busy {
			return
		}
		if q := o.heads[id]; len(q) == 0 || q[0] != e {
			return
		}
	}
	sz := e.it.Record.size()
	if len(b.items) > 0 && (sz > lim.MaxRecordBytes || b.bytes+sz > lim.MaxRequestBytes) {
		return
	}
	s.takeQueued(lim, b, e)
}

// takeQueued moves e into b and holds its shards. o.mu held.
func (s *Shipper) takeQueued(lim Limits, b *batch, e *queued) {
	o := s.ord
	sz := e.it.Record.size()
	if sz > lim.MaxRecordBytes {
		b.tooLarge = true // alone: see fill
		s.noteTooLarge(e.it, lim)
	}
	b.items = append(b.items, e.it)
	b.bytes += sz
	e.taken = true
	o.count--
	o.queueBytes -= sz
	h := hold{ids: slices.Clone(e.ids), exclusive: !e.ok, split: e.split}
	for _, id := range h.ids {
		o.busy[id] = struct{}{}
		if q := o.heads[id]; len(q) > 1 {
			q[0] = nil
			o.heads[id] = q[1:]
		} else {
			delete(o.heads, id)
		}
	}
	if h.exclusive {
		o.exclusive = true
		o.unknown[0] = nil
		o.unknown = o.unknown[1:]
	}
	o.held[e.it.Seq] = h
	o.version = o.routed
	if e.split {
		s.m.Resplits.Inc()
	}
	e.it = Item{} // the batch has it now; do not pin its data
	if len(o.queue) > 2*o.count+64 {
		o.oldest()
		w := 0
		for _, q := range o.queue {
			if !q.taken {
				o.queue[w] = q
				w++
			}
		}
		clear(o.queue[w:])
		o.queue = o.queue[:w]
	}
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
	var lingerCtx context.Context
	var last *queued // nil: look at every shard's first record
	for {
		if s.scan(lim, b, last) {
			return nil
		}
		room := o.room()
		if room && s.src.Pending() > 0 {
			it, err := s.src.Next(ctx)
			if err != nil {
				return err
			}
			last = s.pushLocked(it)
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
			last = s.pushLocked(it)
			continue
		}
		// Nothing may go now: wait for a new item (while the look-ahead has room) or for a
		// hold to be released, then look again.
		e, err := s.waitOrdered(ctx, room)
		if err != nil {
			return err
		}
		last = e // nil after a release: look at every shard again
	}
}

func (s *Shipper) pushLocked(it Item) *queued {
	s.ord.mu.Lock()
	defer s.ord.mu.Unlock()
	return s.ord.push(it)
}

// waitOrdered blocks until an item arrives (returned, pushed) or a hold is released (nil).
func (s *Shipper) waitOrdered(ctx context.Context, room bool) (*queued, error) {
	o := s.ord
	if !room {
		select {
		case <-o.wake:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	o.mu.Lock()
	o.cancelWait = cancel
	empty := o.count == 0
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.cancelWait = nil
		o.mu.Unlock()
	}()
	select {
	case <-o.wake: // released between the scan and now
		return nil, nil
	default:
	}
	if s.opts.Idle != nil && empty && s.src.Pending() == 0 {
		s.waiting.Store(true)
		if s.inFlight.Load() == 0 {
			s.idle()
		}
	}
	it, err := s.src.Next(wctx)
	s.waiting.Store(false)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		if wctx.Err() != nil {
			select {
			case <-o.wake:
			default:
			}
			return nil, nil
		}
		return nil, err
	}
	return s.pushLocked(it), nil
}
