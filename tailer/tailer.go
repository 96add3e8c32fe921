package tailer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/fsnotify/fsnotify"
)

// FileID is a file's identity on one host: device and inode.
type FileID struct{ Dev, Ino uint64 }

// Fingerprint identifies a file's content start: FNV-64a of its first Len bytes, Len =
// min(size at open, 1024). Taken when the tailer starts tracking the file and never changed
// afterwards. A stored position matches a file only if ID equals and the hash of the file's
// first Len bytes equals Sum (Len 0 matches anything), so a reused inode is not mistaken for
// the old file.
type Fingerprint struct {
	Len uint32
	Sum uint64
}

// Source is one tracked file identity; immutable once passed to the Sink.
type Source struct {
	Index       uint32 // unique among the Sources of a Tailer (or of a shared Options.NextIndex), never reused
	ID          FileID
	Fingerprint Fingerprint
	Path        string // the path the file had when tracking started
}

// Position is a stored read position.
type Position struct {
	ID          FileID
	Fingerprint Fingerprint
	Path        string
	Offset      int64
	// Tail is the fingerprint of the Tail.Len bytes just before Offset (TailPrint); Len 0:
	// not checked. A file whose bytes there differ was rewritten and is read from 0.
	Tail Fingerprint
}

// Sink receives everything from ONE goroutine (the tailer's Run). Line may block
// (backpressure: the tailer then simply stops reading; the files are the buffer).
type Sink interface {
	// Open says tracking of src starts at offset (restored, start_at end, or 0).
	Open(src *Source, offset int64)
	// Line hands over one complete line without "\n" (and without a "\r" before it). line is
	// valid only during the call; end is the offset just after the '\n'.
	Line(src *Source, line []byte, end int64) error
	// Close says src is no longer tracked (deleted/rotated away and read to its end).
	Close(src *Source)
}

// BatchSink is a Sink that also takes the complete lines of a chunk read at once, so that
// what it costs per call (a lock, an interface call) is paid per chunk of up to 256 KiB,
// not per line. The tailer then calls Lines for every line ended by a '\n' it read, and
// Line only for multiline events and for a last line handed over unfinished (partial line
// timeout, Once, truncation, retirement). A line cut at MaxLineBytes or started in an
// earlier chunk ends its batch (its bytes are not the chunk's).
type BatchSink interface {
	Sink
	// Lines hands over lines in file order, as many Line calls would: lines[i] (without
	// "\n") ends at offset ends[i]; len(ends) == len(lines). The slices and the bytes they
	// point to are valid only during the call.
	Lines(src *Source, lines [][]byte, ends []int64) error
}

// Options configure a Tailer. Zero values take the defaults in brackets.
type Options struct {
	Paths, Exclude    []string       // doublestar globs on absolute paths; Exclude also matches base names ("*.gz")
	StartAt           string         // "beginning" | "end" ["beginning"]; applies only to files seen at FirstStart
	FirstStart        bool           // no state existed: files present now start at StartAt; later files from 0
	Positions         []Position     // restored positions
	MaxLineBytes      int            // longer lines are truncated [1 MiB]
	Multiline         *regexp.Regexp // optional start pattern: other lines are appended to the previous event
	MultilineMaxLines int            // [500]
	MultilineMaxBytes int            // a longer multiline event is truncated [MaxLineBytes]
	MultilineTimeout  time.Duration  // [1s]
	PollInterval      time.Duration  // safety-net rescan [10s]; polling runs every 1s without fsnotify
	CloseInactive     time.Duration  // a descriptor at EOF this long is closed, identity kept [5m]

	// PartialLineTimeout: a last line without '\n' is handed over after this long without
	// growth [5s]. Its end is the offset after its bytes, so it is never handed over twice; if
	// the writer later continues it, the continuation is a line of its own.
	PartialLineTimeout time.Duration

	// SkipHeaderLines: the first N lines of a file are not handed over when it is read from
	// offset 0 as a new file. Not applied to a file resumed at a stored offset, nor to one read
	// again from 0 after a truncation (copytruncate's writer writes no new header: skipping
	// would lose data).
	SkipHeaderLines int

	// KeepCR: a line ending in "\r\n" keeps its '\r' (agent.json flows send lines byte for
	// byte, as the Kinesis Agent does); by default it is dropped with the '\n'.
	KeepCR bool

	// TruncatedTerminator is appended to a line (or multiline event) cut at its limit, within
	// the limit; shorter than MaxLineBytes and MultilineMaxBytes.
	TruncatedTerminator string
	Once                bool         // read every file to its end, then Run returns nil
	Metrics             Metrics      // zero: nothing exported
	Logger              *slog.Logger // nil: discard

	// FileError, when set, is called on Run's goroutine each time a file or directory cannot
	// be read (err != nil), and with a nil err when a file that could not be opened is opened
	// at last: what /healthz needs to name a file unreadable for long.
	FileError func(path string, err error)

	// FollowSymlinks: follow symbolic links that the patterns' wildcards find (files and
	// directories). Off by default: whoever can write a watched directory could otherwise
	// plant a link to a file only the agent can read (it runs in group adm), or to / under
	// "**". Links in the fixed part of a pattern (before its first wildcard) are the
	// operator's and are always followed.
	FollowSymlinks bool

	// ExcludeDirs are never read, whatever a pattern says: the agent's state directory, so
	// that it does not ship its own positions and spool. Recognised by real path and by
	// device and inode, so a link or a bind mount to one is excluded too.
	ExcludeDirs []string

	// OpenFiles is the descriptor budget, shared by the Tailers of a process (one per flow);
	// beyond it, idle files are closed first (least recently read) and files are read in
	// turn, reopened by path with their identity checked (fdcap.go). nil: a budget of the
	// Tailer's own, from RLIMIT_NOFILE, leaving a margin for the spool, sockets and the
	// metrics server.
	OpenFiles *OpenFiles

	// NextIndex, when set, hands out Source.Index values; share one counter between the
	// Tailers of a process to make indexes unique in the process. nil: the Tailer's own
	// counter, starting at 1.
	NextIndex *atomic.Uint32
}

const (
	defaultMaxLineBytes = 1 << 20
	readBufferSize      = 256 << 10
	fingerprintMax      = 1024
	// readPace: a logger that writes every line with its own write(2) sends an event per
	// line, and reading each one alone cost the agent 12.8 CPU s/GB at 20,000 lines/s (the
	// read, the tail print check, fsnotify's hand-off, and the Go runtime's sysmon, which
	// polls every 20 µs for a while after each wake-up: 17,000 context switches in 5 s).
	// Starting read passes at most every 10 ms took that to 5.9 (20 ms: 5.7), and 20 such
	// files at 500 lines/s each from 103 to 34. A paced pass costs a timer wake-up and one
	// or two fsnotify wake-ups before the kernel merges the rest, so pacing pays only from
	// about 6 writes a pace: at 200 lines/s it cost 32 % more CPU, at 400 6-12 %. So a pass
	// waits only while the queue has had files again less than readPace/6 after the start of
	// the last passes (gapAvg): from ~600 writes/s (1,000 lines/s: -31 %). It costs a line at
	// most 10 ms, and nothing at lower rates.
	readPace = 10 * time.Millisecond
	// maxEventsTaken bounds takeEvents, so that a storm of events cannot hold reading up.
	maxEventsTaken = 1 << 16
)

// Tailer tails the files matching its patterns. See the package comment for its concurrency
// contract: Run must be called once, and everything happens on Run's goroutine.
type Tailer struct {
	opts Options
	sink Sink
	// batch is sink when it takes lines in batches and no stage of the tailer joins lines
	// (multiline); nil otherwise.
	batch BatchSink
	log   *slog.Logger
	m     Metrics
	pats  []pattern
	excl  []string

	// Seams for tests; New sets the production values.
	noFsnotify   bool                   // behave as if fsnotify could not be created
	addWatch     func(dir string) error // replaces fsnotify's Add (to fail it)
	beforeTrack  func(path string)      // called in rescan between the walk and opening a new file
	goneGrace    time.Duration          // a file that left its path is retired after this long at EOF
	goneRecheck  time.Duration          // how often a file that left its path is re-read meanwhile
	idleClose    time.Duration          // a descriptor at EOF this long is closed (identity kept)
	debounce     time.Duration          // delay between a directory event and the rescan it triggers
	fallbackPoll time.Duration          // poll interval without fsnotify
	readPace     time.Duration          // least time between the starts of two read passes from idle
	readDir      func(dir string) ([]os.DirEntry, error)
	openFile     func(path string, flag int) (*os.File, error) // set by Run: opens under the descriptor cap

	st *runState

	cutLogged time.Time // when noteCut last logged (Run's goroutine only)
	cutSince  int       // lines cut since then
}

// New validates the options and returns a Tailer ready to Run.
func New(opts Options, sink Sink) (*Tailer, error) {
	if sink == nil {
		return nil, errors.New("tailer: nil sink")
	}
	if len(opts.Paths) == 0 {
		return nil, errors.New("tailer: no paths")
	}
	switch opts.StartAt {
	case "":
		opts.StartAt = "beginning"
	case "beginning", "end":
	default:
		return nil, fmt.Errorf("tailer: start_at %q: want beginning or end", opts.StartAt)
	}
	t := &Tailer{opts: opts, sink: sink, log: opts.Logger, m: opts.Metrics}
	for _, p := range opts.Paths {
		pt, err := newPattern(p)
		if err != nil {
			return nil, err
		}
		t.pats = append(t.pats, pt)
	}
	for _, e := range opts.Exclude {
		if !doublestar.ValidatePathPattern(e) {
			return nil, fmt.Errorf("tailer: exclude pattern %q is not a valid glob", e)
		}
		t.excl = append(t.excl, e)
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.m = t.m.withDefaults()
	if bs, ok := sink.(BatchSink); ok && opts.Multiline == nil {
		t.batch = bs
	}
	if t.opts.MaxLineBytes <= 0 {
		t.opts.MaxLineBytes = defaultMaxLineBytes
	}
	if t.opts.MultilineMaxLines <= 0 {
		t.opts.MultilineMaxLines = 500
	}
	if t.opts.MultilineMaxBytes <= 0 {
		t.opts.MultilineMaxBytes = t.opts.MaxLineBytes
	}
	if n := len(t.opts.TruncatedTerminator); n >= t.opts.MaxLineBytes || (t.opts.Multiline != nil && n >= t.opts.MultilineMaxBytes) {
		return nil, fmt.Errorf("tailer: truncated record terminator of %d bytes leaves no room for data", n)
	}
	if t.opts.SkipHeaderLines < 0 {
		return nil, fmt.Errorf("tailer: skip header lines %d: must not be negative", t.opts.SkipHeaderLines)
	}
	if t.opts.CloseInactive <= 0 {
		t.opts.CloseInactive = 5 * time.Minute
	}
	if t.opts.PartialLineTimeout <= 0 {
		t.opts.PartialLineTimeout = 5 * time.Second
	}
	if t.opts.MultilineTimeout <= 0 {
		t.opts.MultilineTimeout = time.Second
	}
	if t.opts.PollInterval <= 0 {
		t.opts.PollInterval = 10 * time.Second
	}
	if t.opts.NextIndex == nil {
		t.opts.NextIndex = new(atomic.Uint32)
	}
	t.goneGrace = 5 * time.Second
	t.goneRecheck = 250 * time.Millisecond
	t.idleClose = t.opts.CloseInactive
	t.debounce = 50 * time.Millisecond
	t.fallbackPoll = time.Second
	t.readPace = readPace
	t.readDir = os.ReadDir
	return t, nil
}

// runState is everything Run owns.
type runState struct {
	buf     []byte
	scratch []byte // a truncated line with its terminator, when it cannot be built in place
	// lines and ends keep the memory of frame's batches for BatchSink.Lines.
	lines     [][]byte
	ends      []int64
	files     map[FileID]*file
	byPath    map[string]*file
	restore   map[FileID]Position
	queue     []*file
	watcher   *fsnotify.Watcher
	watched   map[string]bool
	alias     map[string]string // real path of a directory reached through a symlink -> path under the link
	polling   bool
	errLogged map[string]bool
	rescanAt  time.Time // zero: no rescan pending
	nextPoll  time.Time
	next      time.Time // earliest deadline housekeep must run at
	initial   bool      // the first scan, where FirstStart/StartAt apply
	// renamedFrom is the matching path of the last Rename event, waiting for the Create
	// event that names where the file went.
	renamedFrom string
	gone        int    // files with gone set
	scanSeq     uint64 // counts rescans
	// marks: what the cheap safety-net poll knows of each watched directory; sincePoll:
	// cheap polls since the last full sweep.
	marks     map[string]dirMark
	sincePoll int

	excl     []exclDir           // directories never read (the agent's state)
	okDirs   map[string]bool     // real paths of the directories the last walk listed (see openChecked)
	skipped  map[string]bool     // paths not read on purpose, already counted and logged
	patEmpty map[string]bool     // pattern -> matched nothing at the last scan
	special  map[string]bool     // directory -> on procfs/sysfs (files of size 0 noted once)
	retired  map[FileID]Position // where retired files ended, for a file that comes back
	retiredQ []FileID            // retired in order, to bound retired
	open     int                 // descriptors held (tracked files and transient ones)
	budget   *OpenFiles          // shared with the process's other Tailers
	emfileAt time.Time           // last EMFILE error line
	useSeq   uint64              // orders files by last use, for closing the least recently read
	// reading: a read pass is under way (the queue has not been empty since passAt, when it
	// started). gapAvg averages how soon after a pass's start the queue had a file again
	// (at most readPace); gapNoted: this gap is counted already.
	reading  bool
	passAt   time.Time
	gapAvg   time.Duration
	gapNoted bool
}

// dirMark is what the cheap safety-net poll knows of a watched directory.
type dirMark struct {
	mod    time.Time // modification time at the last poll: entries added, removed or renamed change it
	remote bool      // network or user-space file system: writes from other hosts give no events
}

// sweepEvery is how many poll intervals may pass without a full sweep (a stat of every file)
// while fsnotify serves every directory on local file systems.
const sweepEvery = 6

// sweepDue says whether this poll must sweep every file, or may only check that no watched
// directory changed. A stat per file every 10 s is most of an idle Tailer's CPU with 10,000
// files; on local file systems inotify reports every write, so the full sweep, which catches
// what events cannot (a write through a hard link elsewhere, a file truncated and rewritten
// between two reads), runs every sweepEvery intervals. Polling mode, remote file systems,
// files that failed to open (retried on every poll) and changed directories sweep every time.
func (t *Tailer) sweepDue() bool {
	s := t.st
	s.sincePoll++
	if s.polling || s.watcher == nil || s.sincePoll >= sweepEvery || len(s.errLogged) > 0 {
		return true
	}
	changed := false
	for d := range s.watched {
		m := s.marks[d]
		if m.remote {
			return true
		}
		fi, err := os.Stat(d)
		if err != nil {
			changed = true
			continue
		}
		if !fi.ModTime().Equal(m.mod) {
			changed = true
			m.mod = fi.ModTime()
			s.marks[d] = m
		}
	}
	return changed
}

// Run tails until ctx is done (then it returns nil), until a Sink call fails (then it returns
// that error), or, in Once mode, until every matched file has been read to its end.
func (t *Tailer) Run(ctx context.Context) error {
	if t.st != nil {
		return errors.New("tailer: Run called twice")
	}
	s := &runState{
		buf:       make([]byte, readBufferSize),
		files:     make(map[FileID]*file),
		byPath:    make(map[string]*file),
		restore:   make(map[FileID]Position, len(t.opts.Positions)),
		watched:   make(map[string]bool),
		marks:     make(map[string]dirMark),
		errLogged: make(map[string]bool),
		initial:   true,
		skipped:   make(map[string]bool),
		patEmpty:  make(map[string]bool),
		special:   make(map[string]bool),
		retired:   make(map[FileID]Position),
		budget:    t.opts.OpenFiles,
	}
	if s.budget == nil {
		s.budget = NewOpenFiles(0)
	}
	for _, d := range t.opts.ExcludeDirs {
		s.excl = append(s.excl, exclDir{path: d})
	}
	if t.openFile == nil {
		t.openFile = t.openCapped
	}
	for _, p := range t.opts.Positions {
		s.restore[p.ID] = p
	}
	t.st = s
	defer t.closeAll()

	if t.opts.Once {
		return t.runOnce(ctx)
	}
	if !t.noFsnotify {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			t.log.Warn("tailer: fsnotify unavailable, polling every second", "err", err)
			s.polling = true
		} else {
			s.watcher = w
		}
	} else {
		s.polling = true
	}
	s.nextPoll = time.Now().Add(t.pollEvery())
	s.next = s.nextPoll
	if err := t.rescan(); err != nil {
		return err
	}
	s.initial = false
	s.gapAvg = t.readPace

	var events chan fsnotify.Event
	var errs chan error
	if s.watcher != nil {
		events, errs = s.watcher.Events, s.watcher.Errors
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		if len(s.queue) > 0 {
			if !s.reading {
				if !s.gapNoted {
					s.gapNoted = true
					s.gapAvg = (s.gapAvg + min(time.Since(s.passAt), t.readPace)) / 2
				}
				if wait := time.Until(s.passAt.Add(t.readPace)); wait > 0 && s.gapAvg < t.readPace/6 {
					// Writes come fast and this is too soon after the last pass: let them
					// gather. fsnotify's events are not taken meanwhile, so the kernel
					// merges a file's repeated modify events into one and fsnotify's
					// goroutine sleeps.
					timer.Reset(min(wait, time.Until(s.next)))
					select {
					case <-ctx.Done():
						return nil
					case <-timer.C:
					}
					if now := time.Now(); !now.Before(s.next) {
						if err := t.housekeep(now); err != nil {
							return err
						}
					}
					continue
				}
				s.reading, s.passAt, s.gapNoted = true, time.Now(), false
				t.takeEvents(events, errs)
			}
			if err := t.readQueued(); err != nil {
				return err
			}
			// Keep fsnotify drained and deadlines honoured while busy, without blocking.
			for range 64 {
				if !t.takeReady(events, errs) {
					break
				}
			}
			if now := time.Now(); !now.Before(s.next) {
				if err := t.housekeep(now); err != nil {
					return err
				}
			}
			continue
		}
		s.reading = false
		timer.Reset(time.Until(s.next))
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			t.onEvent(ev)
		case err := <-errs:
			t.onWatchError(err)
		case <-timer.C:
		}
		if now := time.Now(); !now.Before(s.next) {
			if err := t.housekeep(now); err != nil {
				return err
			}
		}
	}
}

// takeEvents takes every event fsnotify has ready, yielding so that its goroutine can hand
// over the rest of what it read. A pace leaves the kernel's queue untaken; it is all taken
// when the pass starts, so that events of many files (which the kernel cannot merge) never
// wait more than a pace and never overflow the queue.
func (t *Tailer) takeEvents(events <-chan fsnotify.Event, errs <-chan error) {
	for range maxEventsTaken {
		if t.takeReady(events, errs) {
			continue
		}
		runtime.Gosched()
		if !t.takeReady(events, errs) {
			return
		}
	}
}

// takeReady takes one event or error fsnotify has ready, without blocking; false: none was.
func (t *Tailer) takeReady(events <-chan fsnotify.Event, errs <-chan error) bool {
	select {
	case ev := <-events:
		t.onEvent(ev)
	case err := <-errs:
		t.onWatchError(err)
	default:
		return false
	}
	return true
}

// readQueued reads one chunk of the file at the head of the read queue, and queues it again
// behind the others when it has more: round robin, so one busy file cannot starve the rest.
func (t *Tailer) readQueued() error {
	s := t.st
	f := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	f.queued = false
	more, err := t.readChunk(f)
	if err != nil {
		return err
	}
	if more {
		t.enqueue(f)
	}
	return nil
}

func (t *Tailer) runOnce(ctx context.Context) error {
	s := t.st
	s.polling = true // no watches in Once mode
	if err := t.rescan(); err != nil {
		return err
	}
	for len(s.queue) > 0 {
		if ctx.Err() != nil {
			return nil
		}
		if err := t.readQueued(); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tailer) pollEvery() time.Duration {
	if t.st.polling {
		return min(t.fallbackPoll, t.opts.PollInterval)
	}
	return t.opts.PollInterval
}

func (t *Tailer) wakeAt(tm time.Time) {
	if tm.Before(t.st.next) {
		t.st.next = tm
	}
}

func (t *Tailer) scheduleRescan() {
	s := t.st
	if s.rescanAt.IsZero() {
		s.rescanAt = time.Now().Add(t.debounce)
		t.wakeAt(s.rescanAt)
	}
}

func (t *Tailer) enqueue(f *file) {
	if f.queued || f.retired {
		return
	}
	f.queued = true
	t.st.queue = append(t.st.queue, f)
}

// housekeep runs every deadline that has passed and computes the next one.
func (t *Tailer) housekeep(now time.Time) error {
	s := t.st
	// Deadlines set while housekeeping (wakeAt) must survive the recomputation below.
	s.next = now.Add(time.Hour)
	if !s.rescanAt.IsZero() && !now.Before(s.rescanAt) {
		s.rescanAt = time.Time{}
		if err := t.rescan(); err != nil {
			return err
		}
	}
	if !now.Before(s.nextPoll) && !t.sweepDue() {
		// Cheap poll: no directory changed, so no file appeared, left or was replaced, and
		// local file systems report every write. Only the read lag of busy files is refreshed.
		for _, f := range s.files {
			if f.queued && f.fd != nil {
				if fi, err := f.fd.Stat(); err == nil {
					f.size = fi.Size()
				}
			}
		}
		s.nextPoll = now.Add(t.pollEvery())
	}
	if !now.Before(s.nextPoll) {
		s.sincePoll = 0
		if err := t.rescan(); err != nil {
			return err
		}
		for _, f := range s.files {
			if !f.gone && f.scanSeq == s.scanSeq {
				// The rescan just stated it at its path. Same size as read and same
				// modification time as at the last poll: nothing new, and not truncated and
				// rewritten either. Skipping the fstat, fingerprint read and read of every
				// such file is what keeps thousands of idle files cheap.
				unchanged := f.scanSize == f.off && f.scanMod.Equal(f.polledMod)
				f.polledMod = f.scanMod
				if unchanged {
					f.size = f.scanSize
					continue
				}
			}
			if f.fd != nil {
				// A reader held back by the Sink never reaches EOF: refresh the size for the lag.
				if fi, err := f.fd.Stat(); err == nil {
					f.size = fi.Size()
				}
				if err := t.checkContent(f); err != nil {
					return err
				}
			}
			t.enqueue(f)
		}
		s.nextPoll = now.Add(t.pollEvery())
	}
	next := s.nextPoll
	if !s.rescanAt.IsZero() && s.rescanAt.Before(next) {
		next = s.rescanAt
	}
	var lag int64
	for _, f := range s.files {
		if !f.heldAt.IsZero() {
			dl := f.heldAt.Add(t.opts.PartialLineTimeout)
			switch {
			case f.queued:
				// Bytes are about to be read and may complete the line: decide after that.
				if soon := now.Add(t.goneRecheck); soon.Before(next) && !now.Before(dl) {
					next = soon
				} else if dl.Before(next) {
					next = dl
				}
			case !now.Before(dl):
				if err := t.flushHeld(f); err != nil {
					return err
				}
			case dl.Before(next):
				next = dl
			}
		}
		if f.evLines > 0 {
			dl := f.evLast.Add(t.opts.MultilineTimeout)
			if !now.Before(dl) {
				if err := t.flushEvent(f); err != nil {
					return err
				}
			} else if dl.Before(next) {
				next = dl
			}
		}
		if f.size > f.off {
			lag += f.size - f.off
		}
		if f.queued {
			if f.gone && now.Add(t.goneRecheck).Before(next) {
				next = now.Add(t.goneRecheck)
			}
			continue
		}
		switch {
		case f.gone:
			if f.fd == nil && t.findMoved(f) {
				// Closed for idleness, then rotated: it was found under its new name and
				// gets the same grace as any file that left its path.
				f.eofSince, f.recheckAt = now, now
				t.enqueue(f)
				next = now
				continue
			}
			if f.fd != nil && (f.eofSince.IsZero() || now.Sub(f.eofSince) < t.goneGrace) {
				// Writers may still append to a renamed file until they reopen: keep looking.
				if !now.Before(f.recheckAt) {
					f.recheckAt = now.Add(t.goneRecheck)
					t.enqueue(f)
				}
				if f.recheckAt.Before(next) {
					next = f.recheckAt
				}
				continue
			}
			if err := t.retire(f); err != nil {
				return err
			}
		case f.fd != nil && !f.eofSince.IsZero():
			dl := f.eofSince.Add(t.idleClose)
			if !now.Before(dl) {
				t.closeFD(f)
			} else if dl.Before(next) {
				next = dl
			}
		}
	}
	t.m.ReadLag.Set(float64(lag))
	t.m.FilesWatched.Set(float64(len(s.files)))
	if next.Before(s.next) {
		s.next = next
	}
	return nil
}

func (t *Tailer) onEvent(ev fsnotify.Event) {
	s := t.st
	if link, ok := s.alias[filepath.Dir(ev.Name)]; ok && s.byPath[ev.Name] == nil && !s.watched[ev.Name] {
		// A directory reached through a symlink is watched at its real path: name the file
		// the way the patterns see it.
		ev.Name = filepath.Join(link, filepath.Base(ev.Name))
	}
	if ev.Op == fsnotify.Write {
		if f := s.byPath[ev.Name]; f != nil {
			t.enqueue(f)
			return
		}
	}
	// Files that left their path keep their writers for a while; they are few, so any
	// event is a cheap excuse to look at them again.
	if s.gone > 0 {
		for _, f := range s.files {
			if f.gone && f.fd != nil {
				t.enqueue(f)
			}
		}
	}
	if f := s.byPath[ev.Name]; f != nil {
		t.enqueue(f)
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		if s.watched[ev.Name] {
			// The kernel dropped the watch with the directory; a new one is needed if it returns.
			delete(s.watched, ev.Name)
			delete(s.marks, ev.Name)
			_ = s.watcher.Remove(ev.Name)
		}
	}
	switch {
	case ev.Has(fsnotify.Rename) && t.matches(ev.Name):
		s.renamedFrom = ev.Name
	case ev.Has(fsnotify.Create) && s.renamedFrom != "":
		if filepath.Dir(ev.Name) == filepath.Dir(s.renamedFrom) && !t.matches(ev.Name) {
			t.adoptRenamed(ev.Name)
		}
		s.renamedFrom = ""
	}
	if ev.Op == fsnotify.Write && (s.errLogged[ev.Name] || !t.matches(ev.Name)) {
		// A busy file we cannot open would otherwise cause a rescan per write: it waits
		// for the poll instead.
		return
	}
	if ev.Has(fsnotify.Write) || t.relevant(ev.Name) {
		t.scheduleRescan()
	}
}

// adoptRenamed follows a file that was renamed from a matching path to a non-matching one
// (Rename(old) then Create(new) in one directory). Usually it is known and the next rescan
// marks it gone; but when rotations come faster than rescans, this is the only chance to read
// a file that existed at the matching path only between two rescans.
func (t *Tailer) adoptRenamed(path string) {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	f := t.st.files[fileID(fi)]
	if f == nil {
		if f = t.track(path); f == nil {
			return
		}
	}
	if !f.gone {
		t.setGone(f, true)
		f.path = path
		t.enqueue(f)
		t.wakeAt(time.Now().Add(t.goneRecheck))
	}
}

func (t *Tailer) onWatchError(err error) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		t.log.Warn("tailer: fsnotify queue overflowed, rescanning")
		t.scheduleRescan()
		for _, f := range t.st.files {
			t.enqueue(f)
		}
		return
	}
	t.log.Warn("tailer: fsnotify error", "err", err)
}

func (t *Tailer) closeAll() {
	if t.st.watcher != nil {
		_ = t.st.watcher.Close()
	}
	for _, f := range t.st.files {
		t.closeFD(f)
	}
}
