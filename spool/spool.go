package spool

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	defaultSegmentBytes  = 64 << 20
	defaultFsyncInterval = 100 * time.Millisecond
	defaultSyncBytes     = 8 << 20
	// defaultCompressBacklog: below this backlog the destination keeps up and compressing
	// would only cost CPU; above it, the disk budget is what matters.
	defaultCompressBacklog = 64 << 20
	// Frames up to this size are assembled in one buffer and written with one call; bigger
	// payloads handed over by AppendShared are written from the caller's slice so they are
	// copied only by the kernel.
	scratchBytes = 64 << 10
	// A cut tail beyond this is not kept in the .broken file: it is evidence, not data.
	maxBrokenCopy = 16 << 20
	slowFsync     = time.Second
	// A failing write or fsync is retried after a backoff that doubles up to this cap; the
	// operator is reminded at most once per writeErrRemind while it lasts.
	writeRetryMin  = 50 * time.Millisecond
	writeRetryMax  = 5 * time.Second
	writeErrRemind = time.Minute
	// The in-memory copy of unsynced bytes is bounded: past this (or twice SyncBytes, if
	// larger) Append commits itself, so memory stays flat even when only rolls would commit.
	maxTailBytes = 16 << 20
)

// errPoisoned is Append's internal answer while the active segment's fsync failed and its
// unsynced frames wait to be rewritten into a new segment: Append waits, it does not count.
var errPoisoned = errors.New("spool: waiting for unsynced frames to be rewritten after a failed fsync")

type segment struct {
	first     uint64 // seq of the first data frame, the number in the name
	last      uint64 // last data seq; first-1 while the segment holds none
	end       int64  // bytes of valid frames, header included
	durEnd    int64  // prefix of end known to be durable
	path      string
	f         segFile // the active segment only
	dirtyTail bool    // bytes past end may hold a half frame (a truncate failed)
	// allocEnd: the active segment's blocks are reserved up to here (preallocLocked);
	// past end they are beyond the file's size, which they never change. wmu held.
	allocEnd int64
	gone     bool // removed from segs (deleted or dropped); mu held to read or set
}

// Spool is a durable queue of opaque frames in segment files (see the package doc for the
// format).
//
// Concurrency contract: Append and Sync are called from one goroutine (the committer); Next
// from one goroutine at a time (calls are serialised); Ack from any number of goroutines;
// Replay before Next and Append; Stats, Durable, LastSeq, AckedThrough, Pending and Checkpoint
// from anywhere. A background goroutine makes frames and acks durable (group commit) and
// deletes segments; Close stops it, then syncs.
//
// Lock order: syncMu, then wmu, then mu (rmu, Next's, is taken before mu and never with wmu).
//
// mu is never held across I/O, so Next, Ack, Stats and the other readers of state never wait
// for the disk. wmu is held across writes of frames, and across the fsyncs of a roll and of
// the rewrite after a failed fsync (roll, repairLocked, newSegmentLocked): a sealed or
// rewritten segment must be exactly the bytes that were fsynced, so no ack frame may land in
// it between its fsync and the switch to the next segment. That costs no one: wmu is taken
// only by the appender (which is the goroutine rolling, or waits for the repair anyway), by
// the background goroutine (writeAcks, blocked by the roll's syncMu in any case) and by
// Close. The group commit's fsync, the frequent one, holds syncMu only: appends go on while
// it runs.
type Spool struct {
	opts Options
	fs   fileSystem
	now  func() time.Time
	log  *slog.Logger
	m    Metrics
	lock *os.File
	// lockLost is set by checkLock once Dir no longer names the locked directory.
	lockLost atomic.Bool
	// share is this spool's part of Options.Budget (nil without one); set before the spool
	// is shared, synced under mu by syncBudgetLocked, left at Close.
	share *budgetShare
	// recovery is what Open found destroyed; set before the spool is shared, read-only after.
	recovery Recovery

	syncMu sync.Mutex // serialises commits and rolls

	wmu        sync.Mutex // the writer's state below
	act        *segment   // the active segment; replaced only with syncMu+wmu+mu held
	zeros      [8]byte
	z          codecs      // zstd state, made on first use; the readers share it
	ackWritten uint64      // cursor in the last ack frame written, durable or not
	flushBuf   []pendFrame // flushPendLocked's snapshot, reused
	// compressNext says whether the data frame being written is compressed (wmu held): the
	// codec is used only while the backlog exceeds opts.CompressBacklog.
	compressNext bool
	noPrealloc   bool // the file system cannot fallocate (preallocLocked)
	// tail holds the active segment's bytes [durEnd, end): what a failed fsync may have
	// lost, rewritten from here into a new segment (see the package doc and tail.go).
	tail     unsyncedTail
	poisoned bool // the active segment's fsync failed: it is never written again
	// ackErrLogged is when writeAcks last logged a failure (rate limit).
	ackErrLogged time.Time

	mu         sync.Mutex
	segs       []*segment // oldest first; the last one is act
	bytes      int64
	lastSeq    uint64
	durable    uint64
	acked      uint64
	ackDurable uint64 // cursor in the last durable ack frame: segments are deleted only below it
	checkpoint uint64
	inflight   []inflight // seqs handed out by Next, ascending; inflight[inHead:] are not yet acked
	inHead     int
	rnext      uint64 // Next returns seqs >= rnext only
	full       bool   // an Append waits for room
	closed     bool
	changed    chan struct{} // closed and replaced when durable data, room or closed changes
	cache      []cachedFrame // recent AppendShared frames, ascending seq
	cacheBytes int64
	writeErr   error       // the last write or fsync failure while writes fail; nil when they work
	errSince   time.Time   // when writes started failing
	errRemind  time.Time   // last log line about it
	errCount   int         // failures since errSince
	failing    atomic.Bool // writeErr != nil, read without mu on every Append

	// Options.Write backlog (pending.go): the frames appended and not yet durable, the
	// payload bytes of those acknowledged, how many a commit wrote already, and the seqs a
	// commit is writing (their Acks wait).
	pend      []pendFrame
	pendAcked int64
	pendDisk  int64 // frame bytes of the pending frames neither written nor acknowledged
	// pendHeld is the payload bytes of the pending frames neither written nor handed out
	// (nor, therefore, acknowledged): the spool's own memory, bounded by MaxHeldBytes.
	pendHeld         int64
	heldWaiting      bool // an Append waits for pendHeld to go down
	pendWritten      int
	busyFrom, busyTo uint64
	// delivered and deliveredBytes count the frames (and payload bytes) acknowledged before
	// a commit wrote them: written as delivered frames only.
	delivered      uint64
	deliveredBytes int64

	// rpos is where the data frame rpos.seq ends on disk, the last one Next handed out whose
	// place is known: a reader that stopped reading (Next took frames from memory) starts again
	// there when rpos.seq is rnext-1, instead of at the start of the segment, stepping over
	// every frame before it. mu held.
	rpos readPos

	rmu   sync.Mutex // Next's reader
	rseg  *segment
	rfile readFile
	rfr   frameReader
	rlast uint64 // last data seq the reader passed in rseg (rseg.first-1 at its start)
	allow uint64 // seq jump allowed after the reader skipped corrupt bytes

	kickc   chan struct{} // commit now
	dirtyc  chan struct{} // something to commit within FsyncInterval
	ackc    chan struct{} // the cursor moved: write its ack frame now (see writeAcks)
	maintc  chan struct{} // the checkpoint moved (backlog mode): delete what it allows
	stop    chan struct{}
	stopped chan struct{}
}

// Open opens or creates the spool in opts.Dir and recovers it: torn or corrupt tails are cut,
// complete valid frames are kept.
func Open(opts Options) (*Spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("spool: open: no directory")
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = defaultSegmentBytes
	}
	if opts.FsyncInterval == 0 {
		opts.FsyncInterval = defaultFsyncInterval
	}
	if opts.CompressBacklog == 0 {
		opts.CompressBacklog = defaultCompressBacklog
		if opts.MaxBytes > 0 {
			opts.CompressBacklog = min(opts.CompressBacklog, opts.MaxBytes/4)
		}
	}
	if opts.SyncBytes == 0 {
		opts.SyncBytes = defaultSyncBytes
	}
	s := &Spool{
		opts:    opts,
		fs:      cmp.Or[fileSystem](opts.fs, osFS{}),
		now:     opts.now,
		log:     opts.Logger,
		m:       opts.Metrics.withDefaults(),
		changed: make(chan struct{}),
		kickc:   make(chan struct{}, 1),
		dirtyc:  make(chan struct{}, 1),
		ackc:    make(chan struct{}, 1),
		maintc:  make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: open: %w", err)
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("spool: open: %w", err)
	}
	s.lock = lock
	if err := s.recover(); err != nil {
		for _, seg := range s.segs {
			if seg.f != nil {
				_ = seg.f.Close()
			}
		}
		_ = lock.Close()
		return nil, err
	}
	s.joinBudget()
	s.setGauge()
	go s.run()
	return s, nil
}

// setGauge publishes the bytes on disk; mu held (or the spool not yet shared).
func (s *Spool) setGauge() {
	s.syncBudgetLocked()
	s.m.SpoolBytes.Set(float64(s.bytes))
}

// broadcastLocked wakes every Next and Append waiting for a change. mu must be held.
func (s *Spool) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Spool) kick() {
	select {
	case s.kickc <- struct{}{}:
	default:
	}
}

func (s *Spool) dirty() {
	select {
	case s.dirtyc <- struct{}{}:
	default:
	}
}

// Recovery reports what Open found destroyed on disk; the zero value when nothing was.
func (s *Spool) Recovery() Recovery { return s.recovery }

// Durable returns the highest durable seq (0 = none yet): every frame up to it is on disk
// and fsynced, as a data frame or, with Options.Write backlog, as the delivered stub of a
// frame the destination had acknowledged (its record is durable there). Either way the
// caller's state derived from frames up to it (file positions) may be saved. In backlog
// mode it stops before the first frame a commit left in memory (in flight and young), even
// when later ones are acknowledged.
func (s *Spool) Durable() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.durable
}

// LastSeq returns the highest seq handed out by Append.
func (s *Spool) LastSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSeq
}

// Stats returns a snapshot.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Bytes: s.bytes, Segments: len(s.segs), Durable: s.durable, AckedThrough: s.acked,
		Delivered: s.delivered, DeliveredBytes: s.deliveredBytes,
		MemoryBytes: s.unsyncedLocked() + s.cacheBytes}
	if s.writeErr != nil {
		st.WriteError, st.WriteErrorSince = s.writeErr.Error(), s.errSince
	}
	if s.lockLost.Load() {
		st.WriteError = ErrLockLost.Error()
	}
	if s.lastSeq > s.acked {
		st.Unacked = s.lastSeq - s.acked
	}
	return st
}

// Close syncs, stops the background work and releases the directory. Next and Append return
// ErrClosed afterwards. A failed last commit is returned: the frames it covers are not durable
// (the caller's positions never moved past them).
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.broadcastLocked()
	s.mu.Unlock()
	s.leaveBudget()
	close(s.stop)
	<-s.stopped
	err := s.Sync()
	s.wmu.Lock()
	if s.act.f != nil {
		if err == nil && !s.poisoned {
			s.releasePreallocLocked(s.act)
		}
		if cerr := s.act.f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("spool: close: %w", cerr)
		}
		s.act.f = nil
	}
	s.wmu.Unlock()
	s.rmu.Lock()
	if s.rfile != nil {
		_ = s.rfile.Close()
		s.rfile = nil
	}
	s.rmu.Unlock()
	s.z.close()
	if cerr := s.lock.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("spool: close: %w", cerr)
	}
	return err
}
