package flow

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/kinship-agent/kinship/shipper"
	"github.com/kinship-agent/kinship/spool"
)

// Status is what `kinship status` and /status report about one flow.
type Status struct {
	Name       string       `json:"name"`
	Dir        string       `json:"dir"`
	Configured bool         `json:"configured"` // false: only its state is left on disk (flow removed from the config)
	Running    bool         `json:"running"`    // reported by a running agent
	Files      []FileStatus `json:"files"`
	Spool      SpoolStatus  `json:"spool"`
	// LastSend is when the destination last accepted records; LastError the last failure
	// (zero unless the agent is running, they are not on disk).
	LastSend    *time.Time `json:"last_send,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	Error       string     `json:"error,omitempty"` // why the state could not be read
}

// FileStatus is one file the flow has a position for.
type FileStatus struct {
	Path     string `json:"path"`
	Position int64  `json:"position"` // every line before it is durable in the spool
	Size     int64  `json:"size"`     // -1: the file is gone or was replaced (rotated away)
	LagBytes int64  `json:"lag_bytes"`
	Error    string `json:"error,omitempty"`
}

// SpoolStatus is the flow's spool backlog.
type SpoolStatus struct {
	Bytes         int64  `json:"bytes"`
	Segments      int    `json:"segments"`
	UnackedFrames uint64 `json:"unacked_frames"`
	// UnackedBytes are those frames' bytes: read from disk (ReadStatus), their size there,
	// frame headers included; from a running flow (Flow.Status), their payloads as appended,
	// before the spool's compression.
	UnackedBytes int64 `json:"unacked_bytes"`
	// WriteError: the spool cannot write (disk full?) and the flow waits for it to work again.
	WriteError      string     `json:"write_error,omitempty"`
	WriteErrorSince *time.Time `json:"write_error_since,omitempty"`
	// LostFrames and LostBytes: spool recovery at this start found frames destroyed on disk
	// (their lines are read again from the files while they exist; see spool.Recovery).
	// Reported by a running agent only.
	LostFrames uint64 `json:"lost_frames,omitempty"`
	LostBytes  int64  `json:"lost_bytes,omitempty"`
	// BrokenBytes: damaged bytes kept in *.broken files by recoveries so far (read from disk).
	BrokenBytes int64 `json:"broken_bytes,omitempty"`
}

// ReadStatus reads a flow's state directory without taking its spool's lock, so it works
// whether or not an agent runs the flow. Positions are those of the last saved snapshot
// (at most one checkpoint interval old while the agent runs; exact after it stopped).
func ReadStatus(name, dir string) Status {
	st := Status{Name: name, Dir: dir, Files: []FileStatus{}}
	var errs []error
	pf, _, err := loadPositions(filepath.Join(dir, "positions.json"))
	if err != nil {
		errs = append(errs, err)
	}
	for _, s := range pf.Files {
		st.Files = append(st.Files, fileStatus(s.position(), os.Stat))
	}
	sort.Slice(st.Files, func(i, j int) bool { return st.Files[i].Path < st.Files[j].Path })
	b, err := spool.Inspect(filepath.Join(dir, "spool"))
	if err != nil {
		errs = append(errs, err)
	}
	st.Spool = SpoolStatus{Bytes: b.Bytes, Segments: b.Segments, UnackedFrames: b.UnackedFrames, UnackedBytes: b.UnackedBytes,
		BrokenBytes: b.BrokenBytes}
	if err := errors.Join(errs...); err != nil {
		st.Error = err.Error()
	}
	return st
}

// fileStatus compares a saved position with the file now under its path.
func fileStatus(p position, stat func(string) (os.FileInfo, error)) FileStatus {
	fs := FileStatus{Path: p.Path, Position: p.Offset, Size: -1}
	fi, err := stat(p.Path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			fs.Error = err.Error()
		}
		return fs
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && (uint64(st.Dev) != p.ID.Dev || uint64(st.Ino) != p.ID.Ino) {
		return fs // another file has the name now: the one we read was rotated away
	}
	fs.Size = fi.Size()
	fs.LagBytes = max(0, fs.Size-p.Offset)
	return fs
}

// SpoolRecovery is what the flow's spool found destroyed on disk when it was opened (the
// zero value when nothing was): for health checks. Safe for concurrent use.
func (f *Flow) SpoolRecovery() spool.Recovery { return f.spool.Recovery() }

// Status reports the running flow: its positions and spool as they are now, and the
// shipping times only a running flow knows.
func (f *Flow) Status() Status {
	st := Status{Name: f.cfg.Name, Dir: f.dir, Configured: true, Running: true, Files: []FileStatus{}}
	// Stat outside the positions' lock, which every record takes: a slow stat (many files,
	// a hung network mount) must not stall the pipeline.
	for _, p := range f.pos.files() {
		st.Files = append(st.Files, fileStatus(p, f.stat))
	}
	sort.Slice(st.Files, func(i, j int) bool { return st.Files[i].Path < st.Files[j].Path })
	s := f.spool.Stats()
	rec := f.spool.Recovery()
	st.Spool = SpoolStatus{Bytes: s.Bytes, Segments: s.Segments, UnackedFrames: s.Unacked,
		UnackedBytes: f.backlog.unacked(s.AckedThrough), LostFrames: rec.LostFrames, LostBytes: rec.LostBytes}
	if s.WriteError != "" {
		st.Spool.WriteError, st.Spool.WriteErrorSince = s.WriteError, &s.WriteErrorSince
	}
	h := f.health.snapshot()
	if !h.lastSend.IsZero() {
		st.LastSend = &h.lastSend
	}
	if h.lastErr != "" {
		st.LastError, st.LastErrorAt = h.lastErr, &h.lastErrAt
	}
	return st
}

// Healthy reports whether the flow ships: it is not when data has been waiting in its spool
// and nothing was accepted by the destination for longer than after. reason says why not.
func (f *Flow) Healthy(now time.Time, after time.Duration) (ok bool, reason string) {
	st := f.spool.Stats()
	if st.WriteError != "" && now.Sub(st.WriteErrorSince) > after {
		return false, fmt.Sprintf("flow %s: spool cannot write for %s: %s", f.cfg.Name, now.Sub(st.WriteErrorSince).Round(time.Second), st.WriteError)
	}
	h := f.health.snapshot()
	if h.started.IsZero() {
		// Asked before Run started the flow (a /healthz poll racing the start): nothing can
		// have stalled yet, and damage found at start is news.
		h.started = now
	}
	// Damage the spool's recovery cut at start: the lines are read again from the files, but
	// an operator must hear of it (the disk or the file system lies), for unhealthy_after.
	if rec := f.spool.Recovery(); (rec.FirstLost != 0 || rec.LostFrames > 0 || rec.LostBytes > 0) && now.Sub(h.started) <= after {
		return false, fmt.Sprintf("flow %s: the spool lost %d frames (%d bytes) to damage at start; their lines are read again from the files (duplicates possible); the damaged bytes are kept in %s/*.broken",
			f.cfg.Name, rec.LostFrames, rec.LostBytes, filepath.Join(f.dir, "spool"))
	}
	unacked := st.Unacked
	if unacked == 0 {
		return true, ""
	}
	since := h.started
	if h.lastSend.After(since) {
		since = h.lastSend
	}
	if h.waitingSince.After(since) {
		since = h.waitingSince
	}
	if stalled := now.Sub(since); stalled > after {
		reason = fmt.Sprintf("flow %s: %d spool frames waiting, nothing shipped for %s", f.cfg.Name, unacked, stalled.Round(time.Second))
		if h.lastErr != "" {
			reason += "; last error: " + h.lastErr
		}
		return false, reason
	}
	return true, ""
}

// UnreadableFile is a file or directory the tailer has failed to read since Since, and not
// read since (the tailer retries it on every poll).
type UnreadableFile struct {
	Path  string
	Since time.Time
	Err   string // the last failure
}

// Unreadable lists the paths the flow's tailer cannot read now, oldest failure first.
func (f *Flow) Unreadable() []UnreadableFile {
	f.health.mu.Lock()
	defer f.health.mu.Unlock()
	out := make([]UnreadableFile, 0, len(f.health.unreadable))
	for _, u := range f.health.unreadable {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Since.Before(out[j].Since) })
	return out
}

// fileError is the tailer's FileError: a failure starts (or continues) a path's unreadable
// time, a success ends it.
func (h *health) fileError(path string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		delete(h.unreadable, path)
		return
	}
	u, ok := h.unreadable[path]
	if !ok {
		if h.unreadable == nil {
			h.unreadable = map[string]UnreadableFile{}
		}
		u = UnreadableFile{Path: path, Since: time.Now()}
	}
	u.Err = err.Error()
	h.unreadable[path] = u
}

// health is what the flow remembers about shipping, for Status and Healthy.
type health struct {
	mu           sync.Mutex
	started      time.Time // Run began: a flow that just started is not stalled
	lastSend     time.Time // the destination last accepted a record
	waitingSince time.Time // the spool went from empty to holding data (zero while empty)
	lastErr      string
	lastErrAt    time.Time

	unreadable map[string]UnreadableFile // by path
}

type healthSnapshot struct {
	started, lastSend, waitingSince, lastErrAt time.Time
	lastErr                                    string
}

func (h *health) snapshot() healthSnapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return healthSnapshot{started: h.started, lastSend: h.lastSend, waitingSince: h.waitingSince,
		lastErrAt: h.lastErrAt, lastErr: h.lastErr}
}

func (h *health) start(now time.Time) {
	h.mu.Lock()
	h.started = now
	h.mu.Unlock()
}

// appended notes a frame entering the spool.
func (h *health) appended(now time.Time) {
	h.mu.Lock()
	if h.waitingSince.IsZero() {
		h.waitingSince = now
	}
	h.mu.Unlock()
}

// acked notes a frame the destination accepted; empty says the spool has no backlog left.
func (h *health) acked(now time.Time, empty bool) {
	h.mu.Lock()
	h.lastSend = now
	if empty {
		h.waitingSince = time.Time{}
	}
	h.mu.Unlock()
}

func (h *health) failed(now time.Time, err error) {
	h.mu.Lock()
	h.lastErr, h.lastErrAt = err.Error(), now
	h.mu.Unlock()
}

// watchedDestination records the destination's failures for Status and Healthy.
type watchedDestination struct {
	shipper.Destination
	h *health
}

func (d watchedDestination) Put(ctx context.Context, recs []shipper.Record) ([]error, error) {
	res, err := d.Destination.Put(ctx, recs)
	switch {
	case err != nil && ctx.Err() == nil:
		d.h.failed(time.Now(), err)
	case err == nil:
		for _, e := range res {
			if e != nil {
				d.h.failed(time.Now(), e)
				break
			}
		}
	}
	return res, err
}
