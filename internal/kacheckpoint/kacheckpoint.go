// Package kacheckpoint imports the Amazon Kinesis Agent's per-file read offsets (its SQLite
// checkpoint database, agent.json's checkpointFile) as a flow's first positions, so that a
// host switching agents neither sends a line twice nor skips one.
//
// The Kinesis Agent keeps one row per (flow, path) in FILE_CHECKPOINTS: the flow's id, the
// file's path and identity (Java's file key, "(dev=HEX,ino=DEC)"), its size and mtime then,
// the offset up to which its records were sent, and when the row was written. PlanFlow maps the
// rows to a kinship flow and to the files there now:
//
//   - flow: the agent's id is "kinesis:" + kinesisStream + ":" + filePattern (Firehose:
//     "fh:" + deliveryStream + ":" ...), the pattern as Java's Path prints it; a kinship flow
//     answers to the ids of each of its paths with its stream (AgentFlowIDs).
//   - file: the file with the row's device and inode, at the row's path or renamed since
//     (a rotation while no agent ran) among the flow's files; a file with another identity
//     at the row's path is not the row's file.
//   - offset: at most the file's size now, and the file no shorter than when checkpointed
//     (else it was truncated since, copytruncate say, and the offset points into other data).
//   - age: rows not written for checkpointTimeToLiveDays are the agent's own garbage.
//   - the flow's other files: the Kinesis Agent restarts from its newest checkpoint; the
//     files modified after that checkpoint's file are newer ones it reads from their start,
//     the others it had finished. kinship places them the same way (0, or their end), so
//     start_at applies only to a flow without a usable checkpoint.
//
// Every row that is not imported is skipped with a reason (Skip*), which the caller logs and
// counts; nothing is guessed.
package kacheckpoint

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/tailer"
)

// Checkpoint is one row of the Kinesis Agent's FILE_CHECKPOINTS table.
type Checkpoint struct {
	Flow         string // the agent's flow id
	Path         string
	FileID       string // Java's file key: "(dev=HEX,ino=DEC)"
	LastModified int64  // the file's mtime when checkpointed, Unix ms
	Size         int64  // the file's size when checkpointed
	Offset       int64  // every record before it was sent
	// LastUpdated is when the row was written (UTC); zero when the column could not be read.
	LastUpdated time.Time
}

// ErrNoTable reports a database without FILE_CHECKPOINTS: not the Kinesis Agent's.
var ErrNoTable = errors.New("kacheckpoint: no FILE_CHECKPOINTS table")

// Read reads every checkpoint of the Kinesis Agent's database at path.
func Read(path string) ([]Checkpoint, error) {
	t, err := readTableFile(path, "FILE_CHECKPOINTS")
	if errors.Is(err, errNoTable) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoTable)
	}
	if err != nil {
		return nil, fmt.Errorf("kacheckpoint: %w", err)
	}
	col := map[string]int{}
	for _, name := range []string{"flow", "path", "fileId", "lastModifiedTime", "size", "offset", "lastUpdated"} {
		i := t.column(name)
		if i < 0 {
			return nil, fmt.Errorf("kacheckpoint: %s: FILE_CHECKPOINTS has no column %s", path, name)
		}
		col[name] = i
	}
	out := make([]Checkpoint, 0, len(t.rows))
	for _, r := range t.rows {
		get := func(name string) value {
			if i := col[name]; i < len(r) {
				return r[i]
			}
			return nil
		}
		out = append(out, Checkpoint{
			Flow: text(get("flow")), Path: text(get("path")), FileID: text(get("fileId")),
			LastModified: integer(get("lastModifiedTime")), Size: integer(get("size")),
			Offset: integer(get("offset")), LastUpdated: timestamp(get("lastUpdated")),
		})
	}
	return out, nil
}

func text(v value) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}

func integer(v value) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	case string:
		n, _ := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n
	}
	return -1
}

// timestamp reads lastUpdated: the agent writes strftime('%Y-%m-%d %H:%M:%f','now'), UTC
// text; SQLite's other date forms (Unix seconds, Julian day numbers) are read too.
func timestamp(v value) time.Time {
	switch x := v.(type) {
	case string:
		for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04", "2006-01-02"} {
			if t, err := time.Parse(layout, strings.TrimSuffix(strings.TrimSpace(x), "Z")); err == nil {
				return t
			}
		}
	case int64:
		return time.Unix(x, 0).UTC()
	case float64:
		const unixEpochJulian = 2440587.5
		return time.UnixMilli(int64((x - unixEpochJulian) * 86400e3)).UTC()
	}
	return time.Time{}
}

// ParseFileID reads Java's Unix file key, "(dev=HEX,ino=DEC)": st_dev in hexadecimal (as
// Long.toHexString prints it, so a negative value has 16 digits), st_ino in signed decimal.
func ParseFileID(s string) (tailer.FileID, error) {
	rest, ok := strings.CutPrefix(s, "(dev=")
	if !ok {
		return tailer.FileID{}, fmt.Errorf("file id %q: want (dev=HEX,ino=DEC)", s)
	}
	devS, inoS, ok := strings.Cut(strings.TrimSuffix(rest, ")"), ",ino=")
	if !ok || !strings.HasSuffix(rest, ")") {
		return tailer.FileID{}, fmt.Errorf("file id %q: want (dev=HEX,ino=DEC)", s)
	}
	dev, err := strconv.ParseUint(devS, 16, 64)
	if err != nil {
		return tailer.FileID{}, fmt.Errorf("file id %q: device: %w", s, err)
	}
	ino, err := strconv.ParseInt(inoS, 10, 64)
	if err != nil {
		return tailer.FileID{}, fmt.Errorf("file id %q: inode: %w", s, err)
	}
	return tailer.FileID{Dev: dev, Ino: uint64(ino)}, nil
}

// AgentFlowIDs returns the ids the Kinesis Agent gives the flows that fc stands for: one per
// path pattern (an agent.json flow has one), "kinesis:STREAM:PATTERN" or "fh:STREAM:PATTERN".
// Flows of other destinations have none.
func AgentFlowIDs(fc config.Flow) []string {
	var prefix string
	switch {
	case fc.Kinesis != nil:
		prefix = "kinesis:" + fc.Kinesis.Stream + ":"
	case fc.Firehose != nil:
		prefix = "fh:" + fc.Firehose.DeliveryStream + ":"
	default:
		return nil
	}
	ids := make([]string, 0, len(fc.Paths))
	for _, p := range fc.Paths {
		ids = append(ids, prefix+javaPattern(p))
	}
	return ids
}

// javaPattern is filePattern as the Kinesis Agent prints it in a flow id: its directory (a
// java.nio Path, so repeated and trailing slashes collapse), "/", its file-name glob. The
// translation of agent.json escapes glob characters in the directory; they are unescaped.
func javaPattern(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+1 < len(p) {
			i++
		}
		b.WriteByte(p[i])
	}
	p = b.String()
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	dir, name := filepath.Split(p)
	if dir != "/" {
		dir = strings.TrimSuffix(dir, "/")
	}
	return dir + "/" + name
}

// Why a checkpoint was not imported.
const (
	SkipStale      = "older than checkpointTimeToLiveDays"
	SkipBadFileID  = "unreadable file id"
	SkipGone       = "file gone (no file has its device and inode)"
	SkipReplaced   = "file replaced (another device/inode at its path, its own found nowhere)"
	SkipBeyondEnd  = "offset beyond the file's size (truncated since)"
	SkipTruncated  = "file shorter than when checkpointed (truncated since, e.g. copytruncate)"
	SkipSuperseded = "a newer checkpoint names the same file"
	SkipUnreadable = "file unreadable"
	SkipNoFlow     = "no flow of this configuration has its flow id"
)

// File is what became of one checkpoint, or where a file of the flow that no checkpoint
// names starts.
type File struct {
	AgentFlow string // the row's flow id
	Path      string // where the file is now (the row's path unless the file moved)
	RowPath   string // the row's path
	Offset    int64
	Imported  bool
	Skip      string // why not imported (one of the Skip* texts)
	// Unread: a file no checkpoint names, modified after the file of the flow's newest
	// checkpoint: the Kinesis Agent, restarting, would read it from its start; so does kinship.
	Unread bool
	// Finished: a file no checkpoint names, not modified after the file of the flow's newest
	// checkpoint: the Kinesis Agent had done with it; kinship starts at its end.
	Finished bool
	// StartAt: a file of the flow that no checkpoint names, placed where start_at puts a
	// file at a first start (AddStartAt).
	StartAt bool
}

// Plan is the import for one kinship flow.
type Plan struct {
	Flow      string            // the kinship flow's name
	Positions []tailer.Position // what the flow restores
	Files     []File            // every checkpoint of the flow, imported or skipped, then the other files
}

// Skipped counts the flow's skipped checkpoints by reason.
func (p *Plan) Skipped() map[string]int {
	m := map[string]int{}
	for _, f := range p.Files {
		if !f.Imported {
			m[f.Skip]++
		}
	}
	return m
}

// PlanFlow maps the checkpoints of fc's agent flow ids to positions of the files there now.
// now and ttl decide which rows are stale (ttl <= 0: none).
func PlanFlow(fc config.Flow, cps []Checkpoint, now time.Time, ttl time.Duration) Plan {
	plan := Plan{Flow: fc.Name}
	ids := map[string]bool{}
	for _, id := range AgentFlowIDs(fc) {
		ids[id] = true
	}
	var rows []Checkpoint
	for _, c := range cps {
		if ids[c.Flow] {
			rows = append(rows, c)
		}
	}
	if len(rows) == 0 {
		return plan
	}
	// Newest first: when two rows name the same file (the agent checkpointed it under its
	// old and its new path), the newer one counts.
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].LastUpdated.After(rows[j].LastUpdated) })
	files := flowFiles(fc)
	byID := map[tailer.FileID]string{}
	for path, fi := range files {
		byID[fi.id] = path
	}
	taken := map[tailer.FileID]bool{}
	// newest is the flow's newest usable checkpoint: the one the Kinesis Agent resumes from.
	var newest *Checkpoint
	var newestPath string // where its file is now, if imported
	skip := func(c Checkpoint, why string) {
		plan.Files = append(plan.Files, File{AgentFlow: c.Flow, Path: c.Path, RowPath: c.Path, Offset: c.Offset, Skip: why})
	}
	for _, c := range rows {
		if ttl > 0 && !c.LastUpdated.IsZero() && now.Sub(c.LastUpdated) > ttl {
			skip(c, SkipStale)
			continue
		}
		id, err := ParseFileID(c.FileID)
		if err != nil {
			skip(c, SkipBadFileID)
			continue
		}
		if newest == nil {
			newest = &c
		}
		if taken[id] {
			skip(c, SkipSuperseded)
			continue
		}
		path, found := byID[id]
		if !found {
			if fi, ok := files[c.Path]; ok && fi.id != id {
				skip(c, SkipReplaced)
			} else {
				skip(c, SkipGone)
			}
			continue
		}
		fi := files[path]
		if c.Offset < 0 || c.Offset > fi.size {
			skip(c, SkipBeyondEnd)
			continue
		}
		if fi.size < c.Size {
			// Same inode, less data: truncated and written again, so the offset points into
			// other content. The file is then placed like any file no checkpoint names.
			skip(c, SkipTruncated)
			continue
		}
		fp, err := fingerprint(path, fi.size)
		if err != nil {
			skip(c, SkipUnreadable)
			continue
		}
		taken[id] = true
		if newest == &c {
			newestPath = path
		}
		plan.Positions = append(plan.Positions, tailer.Position{ID: id, Fingerprint: fp, Path: path, Offset: c.Offset})
		plan.Files = append(plan.Files, File{AgentFlow: c.Flow, Path: path, RowPath: c.Path, Offset: c.Offset, Imported: true})
	}
	if newest == nil {
		return plan // only stale checkpoints: start_at decides, as at any first start
	}
	// The other files, as the Kinesis Agent restarting from its newest checkpoint sees them
	// (SourceFileTracker): files modified after that checkpoint's file are newer ones to read
	// from their start (typically the file a rotation created while no agent ran); the others
	// it had finished.
	ref := time.UnixMilli(newest.LastModified)
	if newestPath != "" {
		ref = files[newestPath].mtime
	}
	for _, path := range sortedKeys(files) {
		fi := files[path]
		if taken[fi.id] {
			continue
		}
		fp, err := fingerprint(path, fi.size)
		if err != nil {
			continue // the tailer logs and counts it when it gets there
		}
		taken[fi.id] = true
		f := File{Path: path, RowPath: path, Imported: true}
		if fi.mtime.After(ref) {
			f.Unread = true
		} else {
			f.Finished, f.Offset = true, fi.size
		}
		plan.Positions = append(plan.Positions, tailer.Position{ID: fi.id, Fingerprint: fp, Path: path, Offset: f.Offset})
		plan.Files = append(plan.Files, f)
	}
	return plan
}

// AddStartAt gives every file of fc that the plan has no position for the position a first
// start gives it (start_at end: its size; else 0), for an import written before the flow's
// first start: that start then finds positions.json and no longer applies start_at itself.
func (p *Plan) AddStartAt(fc config.Flow) {
	have := map[tailer.FileID]bool{}
	for _, pos := range p.Positions {
		have[pos.ID] = true
	}
	files := flowFiles(fc)
	for _, path := range sortedKeys(files) {
		fi := files[path]
		if have[fi.id] {
			continue
		}
		var off int64
		if fc.StartAt == "end" {
			off = fi.size
		}
		fp, err := fingerprint(path, fi.size)
		if err != nil {
			continue // the tailer logs and counts it when it gets there
		}
		have[fi.id] = true
		p.Positions = append(p.Positions, tailer.Position{ID: fi.id, Fingerprint: fp, Path: path, Offset: off})
		p.Files = append(p.Files, File{Path: path, RowPath: path, Offset: off, Imported: true, StartAt: true})
	}
}

// Unmatched returns the checkpoints that no flow of cfg answers to (their flow id names
// another stream or pattern), for the command to report.
func Unmatched(cfg *config.Config, cps []Checkpoint) []Checkpoint {
	ids := map[string]bool{}
	for _, fc := range cfg.Flows {
		for _, id := range AgentFlowIDs(fc) {
			ids[id] = true
		}
	}
	var out []Checkpoint
	for _, c := range cps {
		if !ids[c.Flow] {
			out = append(out, c)
		}
	}
	return out
}

type fileInfo struct {
	id    tailer.FileID
	size  int64
	mtime time.Time
}

// flowFiles returns the regular files fc's patterns match now, less its excludes (the
// tailer's rule: a pattern on the whole path or on the base name).
func flowFiles(fc config.Flow) map[string]fileInfo {
	out := map[string]fileInfo{}
	for _, pat := range fc.Paths {
		matches, err := doublestar.FilepathGlob(pat, doublestar.WithFilesOnly(), doublestar.WithNoFollow())
		if err != nil {
			continue
		}
		for _, path := range matches {
			if excluded(fc.Exclude, path) {
				continue
			}
			fi, err := os.Stat(path)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				continue
			}
			out[path] = fileInfo{id: tailer.FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}, size: fi.Size(), mtime: fi.ModTime()}
		}
	}
	return out
}

func excluded(exclude []string, path string) bool {
	name := filepath.Base(path)
	for _, e := range exclude {
		if ok, _ := doublestar.PathMatch(e, path); ok {
			return true
		}
		if ok, _ := doublestar.Match(e, name); ok {
			return true
		}
	}
	return false
}

// fingerprintBytes is how much of a file's start the tailer hashes to tell content apart
// (tailer.Fingerprint: FNV-64a of the first Len bytes, Len = min(size, 1024)). The tailer
// checks a restored fingerprint by hashing the file's first Len bytes again, so the hash must
// be the tailer's (a position with another one starts the file over); the flow's import test
// fails if the two part.
const fingerprintBytes = 1024

func fingerprint(path string, size int64) (tailer.Fingerprint, error) {
	f, err := os.Open(path)
	if err != nil {
		return tailer.Fingerprint{}, err
	}
	defer func() { _ = f.Close() }()
	n := min(size, fingerprintBytes)
	b := make([]byte, n)
	if _, err := io.ReadFull(f, b); err != nil {
		return tailer.Fingerprint{}, err
	}
	h := fnv.New64a()
	_, _ = h.Write(b)
	return tailer.Fingerprint{Len: uint32(n), Sum: h.Sum64()}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
