package tailer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// This file holds what keeps a Tailer to the files it was meant to read on a host it does
// not control: the symlink policy, the exclusion of the agent's own state, and the notes on
// patterns that match nothing and special files.

// linkAllowed says whether path (as the pattern sees it) may be a symbolic link that is
// followed: always with Options.FollowSymlinks; otherwise only in the fixed part of the
// pattern the operator wrote (a /var/log/app that is a link to a data volume). An entry a
// wildcard found may have been planted by whoever can write that directory, and the agent
// (in group adm) can read files that user cannot.
func (t *Tailer) linkAllowed(p *pattern, path string) bool {
	return t.opts.FollowSymlinks || strings.Count(path, "/") < p.fixedDepth
}

// skip notes a path the walk found and does not read. It is counted and logged once for as
// long as it stays there (a link removed and planted again is counted again).
func (t *Tailer) skip(sc *scan, path, reason, msg string) {
	sc.skipped[path] = true
	if t.st.skipped[path] {
		return
	}
	t.st.skipped[path] = true
	t.m.FilesSkipped.WithLabelValues(reason).Inc()
	t.log.Warn(msg, "path", path, "reason", reason)
}

// exclDir is a directory no flow may read: the agent's state. It is recognised by its real
// path (a link to it, or a path below it) and by device and inode (a bind mount of it).
type exclDir struct {
	path  string // as configured
	canon string // links resolved; "" while it does not exist
	id    FileID
}

// refreshStateDirs resolves the excluded directories again: they may be created after the
// Tailer, or replaced.
func (t *Tailer) refreshStateDirs() {
	for i := range t.st.excl {
		e := &t.st.excl[i]
		e.canon, e.id = "", FileID{}
		if fi, err := os.Stat(e.path); err == nil {
			e.id = fileID(fi)
		}
		if c, err := filepath.EvalSymlinks(e.path); err == nil {
			e.canon = c
		}
	}
}

// stateDir reports whether a directory with identity id (zero: unknown), or the real path
// canon ("" unknown), is an excluded directory or lies below one.
func (t *Tailer) stateDir(id FileID, canon string) bool {
	for _, e := range t.st.excl {
		if id != (FileID{}) && id == e.id {
			return true
		}
		if canon != "" && e.canon != "" && (canon == e.canon || strings.HasPrefix(canon, strings.TrimSuffix(e.canon, "/")+"/")) {
			return true
		}
	}
	return false
}

// opening is what the walk knows of a file it is about to open.
type opening struct {
	id     FileID // identity the walk saw (zero: not checked)
	linkOK bool   // the path itself may be a link
}

// errSkipped says a file was found but is not to be read (policy, not failure).
var errSkipped = errors.New("tailer: skipped")

// openChecked opens path for tracking. Without permission to follow a link there, the last
// component is opened with O_NOFOLLOW, and the directory the opened file really is in (the
// kernel's view, /proc/self/fd) must be one the last walk listed without following a link
// (okDirs): a directory swapped for a link between the walk and the open, or between its
// stat and its listing, is caught too. The agent's own state is refused whatever path leads
// to it.
func (t *Tailer) openChecked(path string, o opening) (*os.File, error) {
	flag := os.O_RDONLY
	if !o.linkOK {
		flag |= syscall.O_NOFOLLOW
	}
	fd, err := t.openFile(path, flag)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			t.skipOnce(path, "symlink", "tailer: not following a symbolic link found by a wildcard (set follow_symlinks to read it)")
			return nil, errSkipped
		}
		return nil, err
	}
	strict := !o.linkOK && !t.opts.FollowSymlinks
	if !strict && len(t.st.excl) == 0 {
		return fd, nil
	}
	real, rerr := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd.Fd()))
	if rerr != nil {
		return fd, nil // no /proc: O_NOFOLLOW and the identity check remain
	}
	if strict && !t.st.okDirs[filepath.Dir(real)] {
		t.release(fd)
		t.skipOnce(path, "symlink", "tailer: not following a symbolic link found by a wildcard (set follow_symlinks to read it)")
		return nil, errSkipped
	}
	if t.stateDir(FileID{}, real) {
		t.release(fd)
		t.skipOnce(path, "state_dir", "tailer: not reading the agent's own state directory")
		return nil, errSkipped
	}
	return fd, nil
}

// skipOnce is skip outside a walk: the path is remembered until a walk no longer finds it.
func (t *Tailer) skipOnce(path, reason, msg string) {
	if t.st.skipped[path] {
		return
	}
	t.st.skipped[path] = true
	t.m.FilesSkipped.WithLabelValues(reason).Inc()
	t.log.Warn(msg, "path", path, "reason", reason)
}

// reportPatterns logs a pattern that matches nothing, once, and again only when that changes:
// a typo in a path is otherwise silent.
func (t *Tailer) reportPatterns(sc *scan) {
	s := t.st
	if len(sc.failed) > 0 {
		return // what a directory that cannot be listed holds is unknown
	}
	for i := range t.pats {
		raw := t.pats[i].raw
		empty := sc.matched[raw] == 0
		was, known := s.patEmpty[raw]
		s.patEmpty[raw] = empty
		switch {
		case empty && (!known || !was):
			if known {
				t.log.Warn("tailer: pattern matches no file any more", "pattern", raw)
			} else {
				t.log.Warn("tailer: pattern matches no file (yet)", "pattern", raw)
			}
		case !empty && known && was:
			t.log.Info("tailer: pattern matches files again", "pattern", raw, "files", sc.matched[raw])
		}
	}
}

// noteEmpty explains, once per directory, why files of size 0 on procfs or sysfs are never
// read: they report no size, and their content is generated on each read, so there is no
// offset to follow.
func (t *Tailer) noteEmpty(path string) {
	dir := filepath.Dir(path)
	s := t.st
	if _, ok := s.special[dir]; ok {
		return
	}
	special := specialFS(dir)
	s.special[dir] = special
	if special {
		t.m.FilesSkipped.WithLabelValues("special").Inc()
		t.log.Warn("tailer: files on procfs/sysfs report size 0 and are not tailed", "dir", dir, "example", path)
	}
}

func specialFS(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	switch int64(st.Type) {
	case 0x9fa0, // procfs
		0x62656572, // sysfs
		0x64626720, // debugfs
		0x74726163, // tracefs
		0x27e0eb,   // cgroup
		0x63677270, // cgroup2
		0x73636673: // securityfs
		return true
	}
	return false
}

// tooManyOpen handles EMFILE and ENFILE: one ERROR line, then a reminder every
// emfileReminder while it lasts, and the cap on held descriptors lowered below what the
// process could open, so that the files held are read in turn instead of none at all.
func (t *Tailer) tooManyOpen(err error) bool {
	if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) {
		return false
	}
	s := t.st
	t.m.FileErrors.Inc()
	s.budget.lower()
	now := time.Now()
	if s.emfileAt.IsZero() || now.Sub(s.emfileAt) >= emfileReminder {
		s.emfileAt = now
		t.log.Error("tailer: too many open files; reading files in turn with fewer descriptors (raise LimitNOFILE)",
			"err", err, "held", s.open, "held_by_all_flows", s.budget.Used(), "budget", s.budget.Max())
	}
	return true
}

const emfileReminder = 10 * time.Minute

// isSkip reports whether err only says the file is not to be read.
func isSkip(err error) bool { return errors.Is(err, errSkipped) }
