package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/atomicfile"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/internal/payload"
	"github.com/kinship-agent/kinship/internal/processing"
	"github.com/kinship-agent/kinship/internal/shardmap"
	"github.com/kinship-agent/kinship/shipper"
	"github.com/kinship-agent/kinship/spool"
	"github.com/kinship-agent/kinship/tailer"
)

// drainTimeout is how long requests in flight may finish after a stop was asked for. Their
// records were possibly accepted already; acking them now spares a duplicate after restart.
// With ShutdownGrace it stays within the 5 s an operator waits for a stop.
const drainTimeout = 1500 * time.Millisecond

// Deps are what a flow gets from the process.
type Deps struct {
	Dir         string // the flow's state directory (config.Config.FlowDir)
	Destination shipper.Destination
	Metrics     *metrics.Flow // nil: counted on a registry nobody scrapes
	Logger      *slog.Logger
	Budget      *spool.Budget // the global spool bound shared by all flows of the process (nil: none)
	// ShutdownGrace bounds how long buffered lines may take to reach the spool on stop.
	ShutdownGrace time.Duration
	// CheckpointInterval is how often durable positions are saved [1s].
	CheckpointInterval time.Duration
	// Metadata fills the fields add_metadata asks for.
	Metadata Metadata
	// Shards is the stream's shard map, for flows whose partition keys come from the lines
	// (the same map the destination checks records against); nil otherwise.
	Shards *shardmap.Map
	// MD5 hashes the aggregates of every flow of the process (aggregator.NewMD5Server, closed
	// by its owner after the flows): their lanes fill together and its buffers are shared.
	// nil: each run of the flow's aggregator starts a server of its own.
	MD5 *aggregator.MD5Server
	// OpenFiles is the descriptor budget the tailers of all flows share (one per process,
	// tailer.NewOpenFiles(0)); nil: this flow's tailer takes a budget of its own.
	OpenFiles *tailer.OpenFiles
	// Processing gives the processors their clock and instance metadata client (zero: the
	// clock, and the default IMDS client, which honours AWS_EC2_METADATA_DISABLED and
	// AWS_EC2_METADATA_SERVICE_ENDPOINT). Its Logger is the flow's.
	Processing processing.Deps
	// ImportPositions, when set, is asked at the flow's first start (no positions.json, an
	// empty spool) for the positions another agent left (the Kinesis Agent's checkpoints):
	// they are restored as positions.json's would be, and saved at once (import.go).
	ImportPositions func() []tailer.Position
	// ShippedElsewhere is asked before delete_after_shipped removes a file: ok is false when
	// another flow of the process reads it (its patterns match it, or it knows it) and has
	// not shipped it yet. nil: no other flow.
	ShippedElsewhere func(path string) (ok bool, why string)
}

// Flow is one running flow.
type Flow struct {
	cfg  config.Flow
	deps Deps
	log  *slog.Logger
	dir  string

	spool *spool.Spool

	pos *positions // how far each file is durable, and positions.json

	stage *stage // KeepNewline and processors, between the tailer and the aggregator; nil: none

	// Frame buffers go round: the aggregator builds an aggregate in one (aggregateBuffers),
	// put writes the envelope in front of it (frameInPlace; or copies a small or compressed
	// record into a buffer of its own and gives the aggregator's back), the spool may keep it
	// (cache) and hand the same slice to the shipper, whose ack brings it back here. Without
	// this, every 1 MiB record would be a fresh allocation and a read back from disk.
	bufs      chan []byte // free frame buffers; bounded, unlike a sync.Pool, and not emptied by GC
	shippedMu sync.Mutex
	shipped   map[uint64][]byte // payloads handed to the shipper, by seq, until acked
	frameCap  int               // capacity of new frame buffers: a full aggregate and its envelope
	// bufAllocs counts the full-size frame buffers getBuf allocated: a steady stream, a
	// backlog drained included, allocates only up to the most it has live at once.
	bufAllocs atomic.Int64
	// inPlace maps the first byte of each frame output.Put made in place (its envelope
	// written in front of the aggregate, in the aggregator's buffer) to that whole buffer,
	// from Put until putBuf gets the frame back and recycles the whole buffer, not the frame
	// (the pool's buffers would shrink every round otherwise). A frame the spool or the
	// shipper drop without giving it back (a stop, drop_oldest, a cache drop before its
	// fsync) leaves its entry: pruneInPlace forgets those once the frame is acknowledged and
	// durable, and inPlaceMax bounds them meanwhile (trackInPlace).
	inPlaceMu  sync.Mutex
	inPlace    map[*byte]inPlaceFrame
	inPlaceMax int

	health  health  // shipping times and the last error, for Status and Healthy
	backlog backlog // bytes of the frames not yet acknowledged, for Status

	// shipperIdle is set when the shipper waits for the spool with nothing in flight, and
	// cleared when it takes a frame: put then asks for its frame's commit at once instead of
	// within the spool's fsync_interval, as nothing else would share that fsync anyway.
	shipperIdle atomic.Bool

	// With kinesis.compression, put compresses each record's data before spooling it. Used
	// by the aggregator's delivery goroutine only.
	comp    *payload.Compressor
	compBuf []byte
	hdrBuf  []byte // output.Put's envelope header, on the delivery goroutine too

	// stat is os.Stat; tests make it slow.
	stat func(string) (os.FileInfo, error)

	// beat is the Unix time in ns of the checkpoint loop's last completed round, 0 while the
	// flow is not running: the liveness signal behind the systemd watchdog (see Alive).
	beat atomic.Int64

	del *deleter // delete_after_shipped; nil: off
}

// Alive reports whether the flow runs and its checkpoint loop completed a round recently.
// A round takes the positions' lock and asks the spool for its durable sequence, so a flow
// wedged on either stops beating. Safe for concurrent use.
func (f *Flow) Alive(now time.Time) bool {
	last := f.beat.Load()
	window := max(10*f.deps.CheckpointInterval, 10*time.Second)
	return last != 0 && now.Sub(time.Unix(0, last)) < window
}

// The spool's cache of recent frames (spool.Options.CacheBytes), which Next takes without
// reading them back from disk. With spool.write: backlog (the default) Next takes frames
// from memory before any commit, so the cache would hold only frames a commit wrote before
// the shipper took them (a destination that does not keep up), and it has none: it keeps the
// newest frames written, so in a backlog larger than itself they are dropped before the
// reader gets to them, and in a smaller one reading them back from the page cache costs
// little. At kinesalite (everything a backlog) a cache of spool.MaxHeldBytes cost 3–4 MiB
// of peak RSS (66.5–67.9 against 63.3–63.8 MiB) and 4 more live frame buffers, for no
// measurable CPU. With always, every frame waits in it from its write to its commit
// (SyncBytes, 8 MiB, or FsyncInterval) and then for the shipper: 16 MiB.
const (
	frameCacheBytesBacklog = 0
	frameCacheBytesAlways  = 16 << 20
)

// spareFrameBufs is how many free frame buffers a flow keeps: as many as the path users run
// has live at once, so that a steady stream recycles every one. They are the records of the
// shipper's requests in flight (max_in_flight of at most shipper.DefaultMaxRequestBytes,
// which a drained backlog fills) and the frames the spool holds for it (spool.MaxHeldBytes),
// in buffers of frameCap, plus those the aggregator builds aggregates in (aggregatorBufs):
// 30 at defaults. Measured (before the aggregator took its buffers from here, which were
// then 10 more of its own):
// about 7 live at once at a fast Kinesis endpoint (requests carry the 1 MiB lead), 26 at
// kinesalite with a lead of 4 MiB, when everything was a backlog (frames being written and
// fsynced, or read back, next to those held). Fewer spares than the swings of that count
// allocate anew at every swing, and the garbage waits for the next GC: 8 spares made 85
// allocations of 1 MiB instead of 20 on 512 MiB and 15 MiB more peak RSS. Spares are only
// ever allocated by a swing up to that peak, so an idle flow keeps what it once used. With
// spool.write: always, frames wait for their commit (up to SyncBytes) before the shipper takes
// them, from the spool's cache: 8 MiB more, as measured there.
func spareFrameBufs(cfg config.Flow, frameCap int, write spool.WriteMode) int {
	held := spool.MaxHeldBytes
	if write == spool.WriteAlways {
		held = 8 << 20
	}
	return (maxInFlight(cfg)*shipper.DefaultMaxRequestBytes+held)/frameCap + aggregatorBufs
}

// aggregatorBufs is how many frame buffers the aggregator may hold at once: it builds its
// aggregates in them (aggregator.Options.Buffers), one per slot of its pipeline, Workers+2
// of them, 10 at the default Workers where the CPU has MD5 lanes. They were the slots' own
// buffers before; the pool covers them now so that a steady stream recycles them too.
const aggregatorBufs = 10

// frameSlack is what a frame buffer holds beyond a full aggregate: its envelope.
const frameSlack = 16 << 10

// frameHeadroom is the room the aggregator leaves in front of each aggregate for the
// envelope's header (aggregator.Options.Headroom), written there by output.Put so that the
// frame is made without copying the aggregate. A header is ~45 bytes and ~45 more per mark
// plus its path: 4 KiB holds a record of lines from dozens of files with paths of 100
// bytes, or a few with paths near PATH_MAX; a longer header takes the copy path. It costs
// no memory: frame buffers have frameSlack beyond a full aggregate anyway.
const frameHeadroom = 4 << 10

// A buffer of frameCap holds the headroom and the largest aggregate the aggregator builds.
const _ = uint(frameSlack - frameHeadroom - 64)

// getBuf returns an empty buffer for a frame of n bytes. Only buffers for frames of about a
// full aggregate are recycled, at full size: the spool's cache and the shipper bound the
// frames they hold by length, so a full-size buffer under a small frame (a record sealed by
// max_age, a slow flow, a destination that is down) would multiply the memory they hold by
// up to frameCap/n, gigabytes for a cache of a few thousand small frames. Smaller frames get
// a buffer of their own size: allocating them costs little at the rates that make them.
// Frames of at least half the buffer are recycled, so that the cache and the shipper hold
// at most twice their bounds. Not half a full aggregate: the buffer is one plus frameSlack,
// so with small batches (agent.json's maxBufferSizeBytes becomes batch.max_bytes) it was
// up to 34 times a frame of half a 1 KiB batch, and a cache of them half a GiB; such flows
// allocate each frame instead.
func (f *Flow) getBuf(n int) []byte {
	if !f.recycles(n) {
		return make([]byte, 0, n)
	}
	select {
	case b := <-f.bufs:
		if cap(b) >= n {
			return b[:0]
		}
	default:
	}
	f.bufAllocs.Add(1)
	return make([]byte, 0, max(n, f.frameCap))
}

// recycles says whether a frame of n bytes goes in a recycled full-size buffer (getBuf).
func (f *Flow) recycles(n int) bool { return 2*n >= f.frameCap }

func (f *Flow) putBuf(b []byte) {
	if cap(b) == 0 {
		return
	}
	f.inPlaceMu.Lock()
	if fr, ok := f.inPlace[&b[:1][0]]; ok {
		delete(f.inPlace, &b[:1][0])
		b = fr.base
	}
	f.inPlaceMu.Unlock()
	if cap(b) < f.frameCap {
		return // a small frame's buffer: not worth keeping (see getBuf)
	}
	select {
	case f.bufs <- b[:0]:
	default:
	}
}

// inPlaceFrame is the buffer a frame made in place lies in, and its seq once appended (0
// before).
type inPlaceFrame struct {
	base []byte
	seq  uint64
}

// trackInPlace notes that frame lies in base (see Flow.inPlace). Past inPlaceMax entries,
// twice the frames the pool expects live at once, entries were left by frames dropped
// without coming back: they are all forgotten, so that they do not pin memory; a frame still
// live among them comes back as itself, smaller than frameCap, and goes to the garbage
// collector (the cost of a guess too low is an allocation, never a buffer reused early).
func (f *Flow) trackInPlace(frame, base []byte) {
	f.inPlaceMu.Lock()
	if len(f.inPlace) >= f.inPlaceMax {
		clear(f.inPlace)
	}
	f.inPlace[&frame[0]] = inPlaceFrame{base: base}
	f.inPlaceMu.Unlock()
}

// appendedInPlace records the seq the spool gave frame, for pruneInPlace.
func (f *Flow) appendedInPlace(frame []byte, seq uint64) {
	f.inPlaceMu.Lock()
	if fr, ok := f.inPlace[&frame[0]]; ok {
		fr.seq = seq
		f.inPlace[&frame[0]] = fr
	}
	f.inPlaceMu.Unlock()
}

// forgetInPlace drops frame's entry: the spool did not take it.
func (f *Flow) forgetInPlace(frame []byte) {
	f.inPlaceMu.Lock()
	delete(f.inPlace, &frame[0])
	f.inPlaceMu.Unlock()
}

// pruneInPlace forgets the frames at or below done, acknowledged and durable: the spool and
// the shipper gave back by then every one they were to give back (AckFrame's reuse, or the
// spool's Buffers.Put once durable); those left were dropped. One racing its putBuf only goes
// to the garbage collector.
func (f *Flow) pruneInPlace(done uint64) {
	f.inPlaceMu.Lock()
	for k, fr := range f.inPlace {
		if fr.seq != 0 && fr.seq <= done {
			delete(f.inPlace, k)
		}
	}
	f.inPlaceMu.Unlock()
}

// aggregateBuffers lends the flow's free list to the aggregator, which builds aggregates in
// frame buffers and hands them over with each record (aggregator.Record.Buffer).
type aggregateBuffers struct{ f *Flow }

func (b aggregateBuffers) Get(n int) []byte { return b.f.getBuf(n) }

// frameBuffers lends the flow's free list to the spool: it reads frames back into these
// buffers and returns the ones it drops from its cache.
type frameBuffers struct{ f *Flow }

func (b frameBuffers) Get(n int) []byte { return b.f.getBuf(n)[:n] }
func (b frameBuffers) Put(p []byte)     { b.f.putBuf(p) }

// New opens the flow's spool and restores its positions. Nothing runs until Run.
func New(cfg config.Flow, deps Deps) (*Flow, error) {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics == nil {
		deps.Metrics = metrics.New(prometheus.NewRegistry()).Flow(cfg.Name) // counted, never exported
	}
	if deps.ShutdownGrace <= 0 {
		deps.ShutdownGrace = 3 * time.Second
	}
	if deps.CheckpointInterval <= 0 {
		deps.CheckpointInterval = time.Second
	}
	f := &Flow{
		cfg: cfg, deps: deps, log: deps.Logger.With("flow", cfg.Name),
		dir:     deps.Dir,
		pos:     newPositions(filepath.Join(deps.Dir, "positions.json")),
		stat:    os.Stat,
		shipped: map[uint64][]byte{},
		backlog: backlog{gauge: deps.Metrics.SpoolUnackedBytes},
		del:     newDeleter(cfg.DeleteAfterShipped, cfg.CloseInactive.D()),
	}
	f.deps.Destination = watchedDestination{Destination: framedDestination(cfg, deps.Destination, f.log), h: &f.health}
	if k := cfg.Kinesis; k != nil && k.Compression != "" && k.Compression != payload.None {
		c, err := payload.NewCompressor(k.Compression)
		if err != nil {
			return nil, fmt.Errorf("flow %s: %w", cfg.Name, err)
		}
		f.comp = c
	}
	st, err := newStage(cfg, deps.Processing, deps.Metrics, f.log)
	if err != nil {
		return nil, fmt.Errorf("flow %s: %w", cfg.Name, err)
	}
	f.stage = st
	f.frameCap = aggregatorOptions(cfg, aggregator.Metrics{}).MaxRecordBytes + frameSlack
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return nil, fmt.Errorf("flow %s: create state dir: %w", cfg.Name, err)
	}
	codec, err := spool.ParseCompression(cfg.Spool.Compression)
	if err != nil {
		return nil, fmt.Errorf("flow %s: spool: %w", cfg.Name, err)
	}
	write, err := spool.ParseWriteMode(cfg.Spool.Write)
	if err != nil {
		return nil, fmt.Errorf("flow %s: %w", cfg.Name, err)
	}
	cacheBytes := int64(frameCacheBytesBacklog)
	if write == spool.WriteAlways {
		cacheBytes = frameCacheBytesAlways
	}
	f.bufs = make(chan []byte, spareFrameBufs(cfg, f.frameCap, write))
	f.inPlace = map[*byte]inPlaceFrame{}
	f.inPlaceMax = 2 * cap(f.bufs)
	sp, err := spool.Open(spool.Options{
		Dir:           filepath.Join(f.dir, "spool"),
		SegmentBytes:  int64(cfg.Spool.SegmentBytes),
		MaxBytes:      int64(cfg.Spool.MaxBytes),
		DropOldest:    cfg.Spool.WhenFull == "drop_oldest",
		FsyncInterval: cfg.Spool.FsyncInterval.D(),
		Compression:   codec,
		Write:         write,
		Stub:          envelopeStub,
		CacheBytes:    cacheBytes,
		Buffers:       frameBuffers{f},
		Budget:        deps.Budget,
		Metrics:       spoolMetrics(deps.Metrics),
		Logger:        f.log,
	})
	if err != nil {
		return nil, fmt.Errorf("flow %s: %w", cfg.Name, err)
	}
	// Only once the spool's lock is held: a second agent started on the same state must not
	// remove the temp file of a positions save the first one is making.
	if err := atomicfile.SweepTemp(f.dir); err != nil {
		_ = sp.Close()
		return nil, fmt.Errorf("flow %s: %w", cfg.Name, err)
	}
	f.spool = sp
	return f, nil
}

// Run runs the flow until ctx is done. With once, it reads every matched file to its end,
// waits until the destination acknowledged everything, and returns nil.
func (f *Flow) Run(ctx context.Context, once bool) (err error) {
	defer func() {
		if cerr := f.spool.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("flow %s: %w", f.cfg.Name, cerr)
		}
	}()
	defer f.beat.Store(0)
	restored, firstStart, err := f.restore()
	if err != nil {
		return err
	}
	f.health.start(time.Now())

	// A shipper that stops on its own (a spool read error) stops the flow too: reading on
	// with nothing leaving would only fill the spool.
	ctx, stopFlow := context.WithCancelCause(ctx)
	defer stopFlow(nil)

	// The shipper starts first so that what the spool holds from before leaves first.
	shipCtx, stopShipping := context.WithCancel(context.WithoutCancel(ctx))
	// An idle shipper asks the aggregator for its open aggregate early (aggregator.Nudge):
	// low latency at low rates, full records when the shipper is busy. The aggregator is
	// created after the shipper starts, hence the pointer.
	var idleAgg atomic.Pointer[lineAggregator]
	sh := shipper.New(spoolSource{f}, f.deps.Destination, shipper.Options{
		MaxInFlight: maxInFlight(f.cfg), DrainTimeout: drainTimeout, Metrics: shipperMetrics(f.deps.Metrics), Logger: f.log,
		Shards: f.shardRouter(),
		Idle: func() {
			f.shipperIdle.Store(true)
			if a := idleAgg.Load(); a != nil {
				(*a).Nudge()
			}
		}})
	var shipErr error
	shipDone := make(chan struct{})
	go func() {
		defer close(shipDone)
		shipErr = sh.Run(shipCtx)
		if shipErr != nil {
			stopFlow(shipErr)
		}
	}()
	// Every return waits for the shipper, the early ones too: the spool closes after it, and
	// whoever starts the flow again must not find the old shipper still at work.
	defer func() {
		stopShipping()
		<-shipDone
	}()

	// put may block on a full spool; on shutdown it gets ShutdownGrace to drain the
	// aggregator, then gives up (the lines are still in the files: nothing is lost).
	appendCtx, stopAppending := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAppending()
	// The grace runs from the stop, not from the tailer's return: the tailer may itself be
	// blocked in the aggregator behind a put that waits for room (when_full: block) or for a
	// failing disk, and it returns only once that put gives up.
	graceOnStop := context.AfterFunc(ctx, func() { time.AfterFunc(f.deps.ShutdownGrace, stopAppending) })
	defer graceOnStop()
	agg, err := f.newAggregator(ctx, output{f: f, ctx: appendCtx})
	if err != nil {
		return fmt.Errorf("flow %s: %w", f.cfg.Name, err)
	}
	idleAgg.Store(&agg)
	if f.shipperIdle.Load() {
		agg.Nudge() // the shipper went idle before the aggregator existed
	}
	topts := tailerOptions(f.cfg, tailerMetrics(f.deps.Metrics), f.log, restored, firstStart, once)
	fitLines(&topts, agg.MaxLineBytes())
	topts.FileError = f.health.fileError
	topts.ExcludeDirs = f.stateDirs()
	topts.OpenFiles = f.deps.OpenFiles
	if f.stage != nil {
		f.stage.cutAt = [2]int{topts.MaxLineBytes, topts.MultilineMaxBytes}
	}
	tl, err := tailer.New(topts, newSink(f, agg))
	if err != nil {
		_ = agg.Close()
		return fmt.Errorf("flow %s: %w", f.cfg.Name, err)
	}

	ckptCtx, stopCheckpoints := context.WithCancel(context.WithoutCancel(ctx))
	ckptDone := make(chan struct{})
	go func() { defer close(ckptDone); f.checkpointLoop(ckptCtx) }()
	f.beat.Store(time.Now().UnixNano())

	tailErr := tl.Run(ctx)

	// Stop: everything read goes into the spool, made durable, positions saved.
	timer := time.AfterFunc(f.deps.ShutdownGrace, stopAppending)
	aggErr := agg.Close()
	timer.Stop()
	if ctx.Err() != nil && appendCtx.Err() != nil && (errors.Is(aggErr, context.Canceled) || errors.Is(tailErr, context.Canceled)) {
		// The grace ran out (a full spool, a failing disk): a stop, not a failure. What did
		// not reach the spool is still in the files, and positions never passed it.
		f.log.Warn("stopped before every line read reached the spool; the rest is read again at the next start",
			"shutdown_grace", f.deps.ShutdownGrace)
		if errors.Is(aggErr, context.Canceled) {
			aggErr = nil
		}
		if errors.Is(tailErr, context.Canceled) {
			tailErr = nil
		}
	}
	syncErr := f.spool.Sync()
	if tailErr == nil && aggErr == nil && syncErr == nil && once && ctx.Err() == nil {
		f.log.Info("all files read; waiting for the destination to acknowledge", "last_seq", f.spool.LastSeq())
		f.waitDrained(ctx)
	}
	stopCheckpoints()
	<-ckptDone
	f.checkpoint()
	stopShipping()
	<-shipDone
	return errors.Join(tailErr, aggErr, syncErr, shipErr)
}

func (f *Flow) waitDrained(ctx context.Context) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for f.spool.AckedThrough() < f.spool.LastSeq() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (f *Flow) checkpointLoop(ctx context.Context) {
	t := time.NewTicker(f.deps.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.checkpoint()
			f.deleteShipped(time.Now())
			// Frames drop_oldest deleted are never acknowledged: forget them here too.
			f.backlog.unacked(f.spool.AckedThrough())
			f.pruneInPlace(min(f.spool.AckedThrough(), f.spool.Durable()))
			f.beat.Store(time.Now().UnixNano())
		}
	}
}

// restore rebuilds the durable positions: the last snapshot, then the marks of every frame
// after it. It reports whether this is the flow's first start (no state at all).
func (f *Flow) restore() (restored []position, firstStart bool, err error) {
	snapshotSeq, found, err := f.pos.load()
	if err != nil {
		return nil, false, err
	}
	if !found && f.spool.LastSeq() == 0 && f.deps.ImportPositions != nil {
		if err := f.importPositions(f.deps.ImportPositions()); err != nil {
			return nil, false, err
		}
	}
	// Frames the spool lost to damage (positions.rollBackLost): no mark at or after lost is
	// trusted, and when the snapshot may hold marks of lost frames, the frames before lost
	// are read too, to find each file's earlier position.
	lost := f.spool.Recovery().FirstLost
	var before map[tailer.FileID]seqMark
	if lost != 0 && lost <= snapshotSeq {
		before = map[tailer.FileID]seqMark{}
	}
	// One pass over the spool: the frames after the snapshot for their marks, the frames
	// not acknowledged for the backlog's bytes.
	acked := f.spool.AckedThrough()
	from := min(snapshotSeq, acked) + 1
	if before != nil {
		from = 0
	}
	replayed := 0
	err = f.spool.Replay(from, func(fr spool.Frame) error {
		if fr.Seq > acked && !fr.Delivered {
			f.backlog.add(fr.Seq, len(fr.Payload))
		}
		if lost != 0 && fr.Seq >= lost {
			return nil // its marks are not trusted; its bytes still count as backlog
		}
		if fr.Seq <= snapshotSeq && before == nil {
			return nil
		}
		e, err := decodeEnvelope(fr.Payload, true)
		if err != nil {
			// A frame the spool accepted (CRC valid) but we cannot parse was written by an
			// incompatible agent; its positions are lost, its data is still shipped raw.
			f.log.Warn("spool frame with unreadable positions", "seq", fr.Seq, "err", err)
			return nil
		}
		if fr.Seq <= snapshotSeq {
			for _, m := range e.Marks {
				before[m.ID] = seqMark{seq: fr.Seq, pos: m}
			}
			return nil
		}
		f.pos.replayed(fr.Seq, e.Marks)
		replayed++
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("flow %s: replay spool: %w", f.cfg.Name, err)
	}
	checkpointSeq := snapshotSeq
	if lost != 0 {
		// Saved at once, and only then is the spool told (RecoveryHandled): until then it
		// reports the loss again at every Open, so a crash or a failed save here cannot bring
		// back the old snapshot with nothing left to say it is wrong.
		checkpointSeq = f.spool.LastSeq()
		rolled, toStart, err := f.pos.rollBackLost(lost, snapshotSeq, checkpointSeq, before)
		if err != nil {
			return nil, false, fmt.Errorf("flow %s: %w", f.cfg.Name, err)
		}
		if err := f.spool.RecoveryHandled(); err != nil {
			return nil, false, fmt.Errorf("flow %s: %w", f.cfg.Name, err)
		}
		f.log.Error("spool lost frames to damage; positions rolled back so their lines are read again from the files",
			"first_lost_seq", lost, "snapshot_seq", snapshotSeq, "files_rolled_back", rolled, "files_from_start", toStart)
	}
	restored = f.pos.restored(f.spool.LastSeq(), stillThere)
	f.spool.Checkpoint(checkpointSeq)
	firstStart = !found && f.spool.LastSeq() == 0
	f.log.Info("flow restored", "files", len(restored), "snapshot_seq", snapshotSeq, "frames_replayed", replayed,
		"first_start", firstStart, "spool_unacked", f.spool.Stats().Unacked)
	return restored, firstStart, nil
}

// checkpoint applies the marks of frames that became durable and saves the positions file
// when anything changed; then the spool may delete segments up to the saved sequence.
func (f *Flow) checkpoint() {
	seq, saved, err := f.pos.checkpoint(f.spool.Durable())
	if err != nil {
		f.log.Error("saving positions failed; will retry", "err", err)
		return
	}
	if saved {
		f.spool.Checkpoint(seq)
	}
}

// output receives sealed records from the aggregator's delivery goroutine.
type output struct {
	f   *Flow
	ctx context.Context
}

func (o output) Put(rec *aggregator.Record) error {
	f := o.f
	pm := f.pos.resolve(rec.Marks)
	if rec.UserRecords == 0 {
		// Marks of skipped lines only: every line before them is in a frame appended
		// already, so they become durable with the last one; nothing to spool or send.
		f.pos.skipped(pm)
		return nil
	}
	data := rec.Data
	if f.comp != nil {
		// The aggregator left room for the compression's worst case (payload.Overhead), so
		// the compressed record fits the record limit; were it ever larger, the record goes
		// uncompressed, which consumers read just as well.
		c, err := f.comp.Compress(f.compBuf, rec.Data)
		if err != nil {
			return fmt.Errorf("flow %s: compress record: %w", f.cfg.Name, err)
		}
		f.compBuf = c
		if len(c)+len(rec.PartitionKey) <= int(f.cfg.Kinesis.MaxRecordBytes) {
			data = c
		}
	}
	e := envelope{PartitionKey: rec.PartitionKey, ExplicitHashKey: rec.ExplicitHashKey,
		UserRecords: rec.UserRecords, Marks: pm.marks, Data: data}
	buf, inPlace := f.frameInPlace(rec.Buffer, &e)
	if inPlace {
		// Tracked before the spool has it: the shipper may take it, and its ack give it
		// back, before AppendShared returns.
		f.trackInPlace(buf, rec.Buffer)
	} else {
		buf = appendEnvelope(f.getBuf(envelopeSize(&e)), &e)
		if rec.Buffer != nil {
			f.putBuf(rec.Buffer) // copied out (or compressed from): nothing refers to it
		}
	}
	seq, err := f.spool.AppendShared(o.ctx, buf)
	if err == nil && f.shipperIdle.Load() {
		// Nothing else would share the next group commit: ask for it now. Not Sync: waiting
		// for the disk here would stall the whole pipeline whenever the destination keeps up
		// (an fsync per record); a failed commit is the spool's to retry, log and count.
		f.spool.SyncSoon()
	}
	if err != nil {
		// Nothing was appended (the spool retries write errors itself; this is a stop or a
		// closed spool): the record's marks are dropped with it, its lines are read again.
		if inPlace {
			f.forgetInPlace(buf)
		}
		return fmt.Errorf("flow %s: %w", f.cfg.Name, err)
	}
	if inPlace {
		f.appendedInPlace(buf, seq)
	}
	f.pos.appended(seq, pm)
	f.backlog.add(seq, len(buf))
	f.health.appended(time.Now())
	return nil
}

// frameInPlace makes e's frame in buf, the aggregator's buffer e.Data lies in: the envelope
// header is written just in front of the data, in the room the aggregator left there
// (frameHeadroom), and the frame is that slice of buf, so the aggregate is not copied. It
// reports false, and writes nothing, when the data is not in buf (no buffer, compressed),
// the header does not fit, or the frame is small: a small frame goes to a buffer of its own
// size (getBuf says why). The copy it spares was 2–4 % of the agent's CPU at a fast Kinesis
// endpoint: 512 MiB took 0.86–0.95 CPU s against 0.89–1.00 with it (same runs, 2 cores).
func (f *Flow) frameInPlace(buf []byte, e *envelope) ([]byte, bool) {
	data := e.Data
	if len(buf) == 0 || len(data) == 0 {
		return nil, false
	}
	off := cap(buf) - cap(data)
	if off < 0 || off+len(data) > len(buf) || &buf[off] != &data[0] {
		return nil, false
	}
	f.hdrBuf = appendEnvelopeHeader(f.hdrBuf[:0], e)
	h := len(f.hdrBuf)
	if h > off || !f.recycles(h+len(data)) {
		return nil, false
	}
	copy(buf[off-h:off], f.hdrBuf)
	end := off + len(data)
	return buf[off-h : end : end], true
}

var _ tailer.BatchSink = sink{}

// sink adapts the tailer to the aggregator and records which file each source number is.
// The tailer hands it lines a chunk at a time (tailer.BatchSink).
type sink struct {
	f     *Flow
	agg   lineAggregator
	stage *stage       // nil: lines go as read
	wrap  *lineWrapper // nil: lines go as read (or as processed)
	// done gathers a batch's lines as the stage and the wrapper leave them (their buffers
	// are reused line by line); nil: such lines go to the aggregator one by one.
	done *doneLines
}

// doneLines are processed (or wrapped) lines on their way to AddLines: their bytes end to
// end in buf, each line's end in buf in cut.
type doneLines struct {
	buf   []byte
	cut   []int
	ends  []int64
	lines [][]byte
}

// maxDoneBytes bounds buf: processors may make lines much longer than read.
const maxDoneBytes = 1 << 20

func (d *doneLines) add(line []byte, end int64) {
	d.buf = append(d.buf, line...)
	d.cut = append(d.cut, len(d.buf))
	d.ends = append(d.ends, end)
}

// flush hands the gathered lines to agg.
func (d *doneLines) flush(agg lineAggregator, src uint32) error {
	if len(d.cut) == 0 {
		return nil
	}
	from := 0
	for _, to := range d.cut {
		d.lines = append(d.lines, d.buf[from:to:to])
		from = to
	}
	err := agg.AddLines(src, d.lines, d.ends)
	clear(d.lines) // buf may be dropped below; do not keep it through these
	d.buf, d.cut, d.ends, d.lines = d.buf[:0], d.cut[:0], d.ends[:0], d.lines[:0]
	if cap(d.buf) > maxDoneBytes {
		d.buf = nil
	}
	return err
}

func newSink(f *Flow, agg lineAggregator) sink {
	s := sink{f: f, agg: agg, stage: f.stage, wrap: newLineWrapper(f.cfg.AddMetadata, f.deps.Metadata)}
	if s.stage != nil || s.wrap != nil {
		s.done = &doneLines{}
	}
	return s
}

func (s sink) Open(src *tailer.Source, offset int64) { s.f.pos.open(src, offset) }

func (s sink) Line(src *tailer.Source, line []byte, end int64) error {
	if s.stage != nil {
		var skip bool
		if line, skip = s.stage.process(line); skip {
			return s.agg.Skip(src.Index, end)
		}
	}
	if s.wrap != nil {
		line = s.wrap.wrap(line, src.Path)
	}
	return s.agg.Add(src.Index, line, end)
}

// Lines hands a chunk's lines to the aggregator in one call, or, with processing, the lines
// processing left, copied out of the stage's and the wrapper's buffers: in one call per run
// of lines between skipped ones (a skip moves the position after the lines before it).
func (s sink) Lines(src *tailer.Source, lines [][]byte, ends []int64) error {
	if s.stage == nil && s.wrap == nil {
		return s.agg.AddLines(src.Index, lines, ends)
	}
	d := s.done // newSink makes it whenever lines are transformed
	for i, line := range lines {
		if s.stage != nil {
			var skip bool
			if line, skip = s.stage.process(line); skip {
				if err := d.flush(s.agg, src.Index); err != nil {
					return err
				}
				if err := s.agg.Skip(src.Index, ends[i]); err != nil {
					return err
				}
				continue
			}
		}
		if s.wrap != nil {
			line = s.wrap.wrap(line, src.Path)
		}
		d.add(line, ends[i])
		if len(d.buf) >= maxDoneBytes {
			if err := d.flush(s.agg, src.Index); err != nil {
				return err
			}
		}
	}
	return d.flush(s.agg, src.Index)
}

func (s sink) Close(src *tailer.Source) { s.f.pos.close(src) }

// spoolSource is the spool as the shipper sees it: envelopes decoded to records.
type spoolSource struct{ f *Flow }

func (s spoolSource) Next(ctx context.Context) (shipper.Item, error) {
	for {
		fr, err := s.f.spool.Next(ctx)
		if err != nil {
			return shipper.Item{}, err
		}
		e, err := decodeEnvelope(fr.Payload, false)
		if err != nil {
			// The spool's CRC says these bytes are what was written, so this is a frame from an
			// incompatible version. Shipping garbage would be worse; keep it on disk by not
			// acking? That would block the flow forever. Count, log, ack.
			s.f.deps.Metrics.SpoolCorrupt.Inc()
			s.f.log.Error("spool frame is not a kinship envelope; skipped", "seq", fr.Seq, "err", err)
			reuse, err := s.f.spool.AckFrame(fr.Seq)
			if err != nil {
				return shipper.Item{}, err
			}
			if reuse {
				s.f.putBuf(fr.Payload)
			}
			continue
		}
		s.f.shipperIdle.Store(false)
		s.f.shippedMu.Lock()
		s.f.shipped[fr.Seq] = fr.Payload
		s.f.shippedMu.Unlock()
		return shipper.Item{Seq: fr.Seq, Record: shipper.Record{
			PartitionKey: e.PartitionKey, ExplicitHashKey: e.ExplicitHashKey,
			Data: e.Data, UserRecords: e.UserRecords,
		}}, nil
	}
}

func (s spoolSource) Pending() int { return s.f.spool.Pending() }

func (s spoolSource) Ack(seq uint64) error {
	reuse, err := s.f.spool.AckFrame(seq)
	if err != nil {
		return err
	}
	st := s.f.spool.Stats()
	s.f.health.acked(time.Now(), st.Unacked == 0)
	s.f.backlog.unacked(st.AckedThrough) // forget what is acknowledged
	// The shipper is done with the record once it acks it: its buffer can carry the next
	// one, unless a commit wrote the frame from it and its fsync is still to come.
	s.f.shippedMu.Lock()
	b, ok := s.f.shipped[seq]
	delete(s.f.shipped, seq)
	s.f.shippedMu.Unlock()
	if ok && reuse {
		s.f.putBuf(b) // else the spool recycles it once durable
	}
	return nil
}

func maxInFlight(cfg config.Flow) int {
	n := 0
	switch {
	case cfg.Kinesis != nil:
		n = cfg.Kinesis.MaxInFlight
	case cfg.Firehose != nil:
		n = cfg.Firehose.MaxInFlight
	case cfg.HTTP != nil:
		n = cfg.HTTP.MaxInFlight
	}
	if n <= 0 {
		return config.DefaultMaxInFlight
	}
	return n
}

func aggregatorOptions(cfg config.Flow, m aggregator.Metrics) aggregator.Options {
	o := aggregator.Options{
		MaxRecordBytes: int(cfg.Batch.MaxBytes),
		MaxRecords:     cfg.Batch.MaxRecords,
		MaxAge:         cfg.Batch.MaxAge.D(),
		PartitionKey:   "random",
		Aggregate:      true,
		Metrics:        m,

		TruncatedTerminator: cfg.TruncatedRecordTerminator,
	}
	if fh := cfg.Firehose; fh != nil && fh.RecordPerLine {
		// One Firehose record per line, as the Kinesis Agent sends them: each line is a
		// shipper record of its own, so a failed one is resent alone.
		o.Aggregate = false
	}
	if fh := cfg.Firehose; fh != nil && fh.JoinBytes > 0 {
		o.JoinBytes = int(fh.JoinBytes)
	}
	if k := cfg.Kinesis; k != nil {
		o.PartitionKey = k.PartitionKey
		o.Aggregate = k.Aggregate
		if int(k.MaxRecordBytes) < o.MaxRecordBytes || o.MaxRecordBytes == 0 {
			o.MaxRecordBytes = int(k.MaxRecordBytes)
		}
		if k.Compression != "" && k.Compression != payload.None {
			// Room for what compressing incompressible data adds: the limit is the stream's,
			// on the compressed bytes.
			o.MaxRecordBytes = min(o.MaxRecordBytes, int(k.MaxRecordBytes)-payload.Overhead(int(k.MaxRecordBytes)))
		}
	}
	return o
}

// framedDestination configures a Firehose destination for a flow whose lines keep their
// '\n' (agent.json flows): sent as they are, not ended twice.
func framedDestination(cfg config.Flow, d shipper.Destination, log *slog.Logger) shipper.Destination {
	if !cfg.KeepNewline || cfg.Firehose == nil {
		return d
	}
	if fh, ok := d.(*shipper.Firehose); ok {
		return fh.LinesFramed()
	}
	// Someone wrapped the Firehose destination (or a test passed its own): say so, as its
	// records may end in two newlines.
	log.Warn("firehose destination is not a *shipper.Firehose: cannot tell it that lines keep their newline", "type", fmt.Sprintf("%T", d))
	return d
}

// fitLines lowers the tailer's line limits to the longest line that fits a record (the
// aggregator's MaxLineBytes: the record limit minus the partition key and framing), so that
// the tailer makes the one cut, with truncated_record_terminator, and counts it once. The
// aggregator still cuts, the same way, a line that grew after the tailer (add_metadata).
func fitLines(o *tailer.Options, fits int) {
	if o.MaxLineBytes <= 0 || o.MaxLineBytes > fits {
		o.MaxLineBytes = fits
	}
	if o.MultilineMaxBytes <= 0 || o.MultilineMaxBytes > fits {
		o.MultilineMaxBytes = fits
	}
}

func tailerOptions(cfg config.Flow, m tailer.Metrics, log *slog.Logger, restored []position, firstStart, once bool) tailer.Options {
	o := tailer.Options{
		Paths: cfg.Paths, Exclude: cfg.Exclude, StartAt: cfg.StartAt, FirstStart: firstStart,
		Positions: restored, MaxLineBytes: int(cfg.MaxLineBytes), PollInterval: cfg.PollInterval.D(),
		Once: once, Metrics: m, Logger: log,
		CloseInactive: cfg.CloseInactive.D(), PartialLineTimeout: cfg.PartialLineTimeout.D(),
		SkipHeaderLines: cfg.SkipHeaderLines, TruncatedTerminator: cfg.TruncatedRecordTerminator,
		FollowSymlinks: cfg.FollowSymlinks,
		// An agent.json record is the line as written, '\r' included, as the Kinesis Agent
		// sends it.
		KeepCR: cfg.KeepNewline,
	}
	if ml := cfg.Multiline; ml != nil {
		o.Multiline = ml.Regexp
		o.MultilineMaxLines = ml.MaxLines
		o.MultilineMaxBytes = int(ml.MaxBytes)
		o.MultilineTimeout = ml.Timeout.D()
	}
	return o
}

// stateDirs are the directories no flow may read: the agent's state directory (the parent
// of "flows", which holds this flow's directory) and this flow's own directory, whatever the
// patterns say. Otherwise a pattern covering state_dir ships positions.json every second and
// re-spools the spool.
func (f *Flow) stateDirs() []string {
	dirs := []string{f.dir}
	if parent := filepath.Dir(f.dir); filepath.Base(parent) == "flows" {
		dirs = append(dirs, filepath.Dir(parent))
	}
	return dirs
}
