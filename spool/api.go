package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Frame is one record read back from the spool.
type Frame struct {
	Seq     uint64 // assigned by Append, strictly increasing across restarts
	Payload []byte // owned by the caller: a fresh slice for every frame, never reused by the spool
	// Delivered (Replay only) says the destination acknowledged the frame before a commit
	// wrote it: Payload is what Options.Stub made of it, not the record.
	Delivered bool
}

// WriteMode says which frames a commit writes to the segment files.
type WriteMode uint8

const (
	// WriteAlways writes every frame when it is appended (the zero value).
	WriteAlways WriteMode = iota
	// WriteBacklog keeps appended frames in memory and hands them to Next at once; a
	// commit writes only the frames not acknowledged by then, and for each acknowledged one
	// a small delivered frame holding Options.Stub of it (see the package doc).
	WriteBacklog
)

// ParseWriteMode reads the config's spool.write: "backlog" or "always".
func ParseWriteMode(s string) (WriteMode, error) {
	switch s {
	case "always":
		return WriteAlways, nil
	case "backlog", "":
		return WriteBacklog, nil
	}
	return 0, fmt.Errorf("spool: write %q: must be backlog or always", s)
}

func (m WriteMode) String() string {
	if m == WriteBacklog {
		return "backlog"
	}
	return "always"
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("spool: closed")

// ErrLocked is returned (wrapped) by Open when another Spool, in this process or another,
// holds the directory. The holder may be a previous agent still shutting down: a caller may
// wait and try again.
var ErrLocked = errors.New("spool: directory locked")

// ErrLockLost is returned by Append once the spool's directory was removed or replaced while
// the spool had it open (an operator's rm -rf, say): its lock then guards nothing, another
// agent may be writing a new directory under the same path, and what this one appends would
// go to files no one will read. The flow must stop; its lines are still in the files.
var ErrLockLost = errors.New("spool: directory removed or replaced while in use")

// Options configures Open. Zero values take the defaults in brackets.
type Options struct {
	Dir          string // created (0700) if missing; one spool per directory (flock on Dir itself)
	SegmentBytes int64  // roll to a new segment after this many bytes [64 MiB]
	MaxBytes     int64  // 0 = unbounded; Append blocks while bytes on disk >= MaxBytes, until acks free segments or ctx is done
	// DropOldest (when_full: drop_oldest) makes a full spool delete its oldest segments, even
	// unacknowledged, instead of blocking Append; see the package doc.
	DropOldest bool
	// Budget, when set, is a bound shared with other spools (the global spool.max_bytes): a
	// spool past its share applies the same policy as past MaxBytes (see Budget). The spool
	// counts towards it from Open to Close.
	Budget *Budget
	// FsyncInterval is the group commit's: appended frames become durable at most this long
	// later (WriteBacklog: a frame not acknowledged is written once it is this old, so one
	// to two intervals after its append) [100ms]; < 0: only Sync, Close, rolls and the
	// bounds commit.
	FsyncInterval time.Duration
	SyncBytes     int64 // ...or as soon as this many bytes are unsynced (WriteAlways only) [8 MiB]; < 0: no byte trigger
	// CacheBytes bounds the payloads of recent AppendShared frames kept in memory so that
	// Next hands them out without reading them back from disk [0: no cache].
	CacheBytes int64
	// Compression encodes each data frame's payload on disk (see the package doc); a frame
	// that would not shrink is stored raw. Frames of every codec are read whatever this is.
	// MaxBytes counts the compressed bytes. [CompressNone]
	Compression Compression
	// CompressBacklog: frames are compressed only while the backlog (unacknowledged frames
	// times the size of the payload being appended) exceeds it, so that CPU goes to
	// compression when the disk budget is at stake (the destination is slow or down) and
	// not while the destination keeps up. 0: MaxBytes/4, at most 64 MiB (64 MiB when MaxBytes
	// is 0); < 0: every frame.
	CompressBacklog int64
	// Write chooses which frames reach the segment files [WriteAlways]; see WriteMode.
	Write WriteMode
	// Stub (WriteBacklog) returns what a delivered frame keeps of payload on disk, in place
	// of the record: what the caller needs back from Replay after a crash (its file
	// positions). It is called by Append, before the frame can be acknowledged (the caller
	// may recycle the payload then), and must return memory of its own. nil: an empty stub.
	Stub func(payload []byte) []byte
	// Buffers, when set, recycles payload memory: payloads Next reads from disk come from
	// Get, and shared payloads dropped from the cache without being handed out go to Put.
	Buffers Buffers
	Metrics Metrics      // zero: nothing exported
	Logger  *slog.Logger // nil: discard

	fs  fileSystem       // tests inject faults here; nil: the os
	now func() time.Time // tests move time (backlog mode's age of a frame); nil: time.Now
}

// Recovery is what Open found destroyed on disk (see Recovery in the package doc). Frames are
// opaque to the spool, but the caller keeps state derived from them (file positions), which
// must not claim what was lost.
type Recovery struct {
	// LostFrames and LostBytes count what this Open cut off segments or set aside with a
	// segment whose header is invalid (the bytes are kept in *.broken files): data frames (one
	// at least for damage that hides every frame) and bytes.
	LostFrames uint64
	LostBytes  int64
	// FirstLost is the lowest seq above the acknowledged cursor that may have been destroyed,
	// by a cut or set-aside segment or by damage inside a sealed segment that the reader steps
	// over (0: none). Frames at or below the cursor were delivered before. Any state derived
	// from frames at or after FirstLost must be rebuilt from the frames before it: frames that
	// survive after a lost one (in later segments) carry file positions past lines that only
	// the lost frame held. Seqs of frames cut from the newest segment are given out again.
	// It is reported by every Open until RecoveryHandled (or until the cursor passes it).
	FirstLost uint64
}

// Buffers is a source of payload buffers, so that a steady stream of frames does not turn
// into a steady stream of allocations. Get returns a slice of length n; both are called
// from any goroutine.
type Buffers interface {
	Get(n int) []byte
	Put(b []byte)
}

// Stats is a snapshot of the spool's state.
type Stats struct {
	Bytes        int64  // bytes of all segment files
	Segments     int    // segment files, the active one included
	Unacked      uint64 // LastSeq - AckedThrough
	Durable      uint64 // highest durable seq
	AckedThrough uint64 // the acknowledged cursor
	// Delivered and DeliveredBytes (Options.Write backlog) count the frames, and their
	// payload bytes, that the destination acknowledged before a commit would have written
	// them, since Open: only their delivered stubs reached the disk.
	Delivered      uint64
	DeliveredBytes int64
	// MemoryBytes is what the spool holds in memory for frames besides those Next handed
	// out (the caller's): payloads appended and neither written nor handed out (backlog
	// mode, at most MaxHeldBytes but for a lone frame), bytes written and not yet fsynced
	// (kept for the rewrite after a failed fsync; a commit bounds them), and the cache (at
	// most Options.CacheBytes).
	MemoryBytes int64
	// WriteError is the last write or fsync failure while writes keep failing (Append waits,
	// and retries); empty when writes work. WriteErrorSince is when they started failing.
	WriteError      string
	WriteErrorSince time.Time
}
