package tailer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/bmatcuk/doublestar/v4"
)

// pattern is one Paths glob, split into path components so that a directory can be checked
// for whether it can still lead to a match (and so needs walking and watching).
type pattern struct {
	raw   string
	base  string   // longest directory prefix without meta characters
	comps []string // raw split on "/"; comps[0] is "" (absolute)
	loose bool     // a {...} alternative spans "/": every directory under base may lead to a match
}

func newPattern(p string) (pattern, error) {
	if !filepath.IsAbs(p) {
		return pattern{}, fmt.Errorf("tailer: path pattern %q is not absolute", p)
	}
	if !doublestar.ValidatePathPattern(p) {
		return pattern{}, fmt.Errorf("tailer: path pattern %q is not a valid glob", p)
	}
	base, _ := doublestar.SplitPattern(p)
	pt := pattern{raw: p, base: base, comps: strings.Split(p, "/")}
	depth := 0
	for _, c := range p {
		switch c {
		case '{':
			depth++
		case '}':
			depth--
		case '/':
			if depth > 0 {
				pt.loose = true
			}
		}
	}
	return pt, nil
}

// canDescend reports whether files below dir may match the pattern.
func (p *pattern) canDescend(dir string) bool {
	dc := strings.Split(strings.TrimSuffix(dir, "/"), "/")
	if p.loose {
		return strings.HasPrefix(dir+"/", strings.TrimSuffix(p.base, "/")+"/") || strings.HasPrefix(p.base+"/", dir+"/")
	}
	for i, d := range dc {
		if i >= len(p.comps) {
			return false
		}
		if p.comps[i] == "**" {
			return true
		}
		if i == len(p.comps)-1 || !doublestar.MatchUnvalidated(p.comps[i], d) {
			return false
		}
	}
	return true
}

// matches reports whether path is a file the Tailer should follow (before checking its type).
func (t *Tailer) matches(path string) bool {
	for i := range t.pats {
		if doublestar.PathMatchUnvalidated(t.pats[i].raw, path) {
			return !t.excluded(path)
		}
	}
	return false
}

func (t *Tailer) excluded(path string) bool {
	name := filepath.Base(path)
	for _, e := range t.excl {
		if doublestar.PathMatchUnvalidated(e, path) || doublestar.MatchUnvalidated(e, name) {
			return true
		}
	}
	return false
}

// relevant reports whether an event on path can change the set of matched files.
func (t *Tailer) relevant(path string) bool {
	if t.st.watched[path] || t.st.byPath[path] != nil {
		return true
	}
	for i := range t.pats {
		if t.pats[i].canDescend(path) || doublestar.PathMatchUnvalidated(t.pats[i].raw, path) {
			return true
		}
	}
	return false
}

type scan struct {
	files   map[string]fs.FileInfo // matched path -> stat (symlinks followed)
	targets map[string]string      // symlink target -> matched symlink path
	dirs    map[string]bool        // directories to watch, by their real path when reached through a link
	alias   map[string]string      // real path of a directory reached through a link -> its path under the link
	visited map[FileID]bool        // directories walked for the current pattern
}

// walk lists dir (the path the pattern sees) and descends where the pattern can still match.
// real is dir's path without symlinked directories on the way from the pattern's base: the
// path that is watched, so that events name files the way the kernel sees them; alias maps
// them back. Symlinked directories are followed; a directory is walked once per pattern,
// identified by device and inode, so a link to an ancestor ends the descent instead of
// looping, and a directory reached by two paths is listed under the first.
func (t *Tailer) walk(sc *scan, p *pattern, dir, real string) {
	di, err := os.Stat(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			t.fileErr(dir, err)
		}
		return
	}
	id := fileID(di)
	if sc.visited[id] {
		return
	}
	sc.visited[id] = true
	sc.dirs[real] = true
	if real != dir {
		sc.alias[real] = dir
	}
	// Watch before listing: a file renamed, created or removed after the listing then produces
	// an event, and no change can fall between the listing and the watch.
	t.watchDir(real)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			t.fileErr(dir, err)
		}
		return
	}
	for _, e := range entries {
		full := filepath.Join(dir, e.Name())
		typ := e.Type()
		if typ.IsDir() {
			if p.canDescend(full) {
				t.walk(sc, p, full, filepath.Join(real, e.Name()))
			}
			continue
		}
		if !typ.IsRegular() && typ&fs.ModeSymlink == 0 {
			continue
		}
		if typ&fs.ModeSymlink != 0 && p.canDescend(full) {
			if fi, err := os.Stat(full); err == nil && fi.IsDir() {
				if target, err := filepath.EvalSymlinks(full); err == nil {
					t.walk(sc, p, full, target)
				}
				continue
			}
		}
		if _, ok := sc.files[full]; ok || !doublestar.PathMatchUnvalidated(p.raw, full) || t.excluded(full) {
			continue
		}
		fi, err := os.Stat(full)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) { // dangling links and races are not errors
				t.fileErr(full, err)
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		sc.files[full] = fi
		if typ&fs.ModeSymlink != 0 {
			if target, err := filepath.EvalSymlinks(full); err == nil {
				sc.targets[target] = full
				sc.dirs[filepath.Dir(target)] = true
			}
		}
	}
}

// rescan walks every pattern, tracks new files, notices files that left their paths, and
// brings the directory watches up to date.
func (t *Tailer) rescan() error {
	s := t.st
	s.scanSeq++
	sc := &scan{files: map[string]fs.FileInfo{}, targets: map[string]string{}, dirs: map[string]bool{}, alias: map[string]string{}}
	for i := range t.pats {
		p := &t.pats[i]
		sc.visited = map[FileID]bool{}
		base := p.base
		for {
			fi, err := os.Stat(base)
			if err == nil && fi.IsDir() {
				break
			}
			parent := filepath.Dir(base)
			if parent == base {
				break
			}
			base = parent
		}
		if base == p.base {
			t.walk(sc, p, base, base)
		} else {
			// The base does not exist yet: watch the nearest ancestor for it to appear.
			sc.dirs[base] = true
		}
	}

	paths := make([]string, 0, len(sc.files))
	for p := range sc.files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	seen := make(map[*file]bool, len(s.files))
	byPath := make(map[string]*file, len(paths))
	for _, path := range paths {
		fi := sc.files[path]
		id := fileID(fi)
		f := s.files[id]
		if f == nil && fi.Size() == 0 {
			// Nothing to read yet, and a fingerprint of zero bytes would match any later file
			// with this inode: start tracking once the first bytes arrive.
			continue
		}
		if f == nil {
			if t.beforeTrack != nil {
				t.beforeTrack(path)
			}
			f = t.track(path)
			if f == nil || f.src.ID != id {
				// Renamed away (and maybe replaced) between the walk and the open. The watch
				// may not have seen it go, so nothing else would ever read the walked file.
				t.trackMoved(filepath.Dir(path), id)
			}
			if f == nil {
				continue
			}
			if f.src.ID == id {
				f.polledMod = fi.ModTime() // read from here on: the poll need not look until it changes
			}
		} else if seen[f] {
			byPath[path] = f
			continue
		}
		seen[f] = true
		if f.gone {
			t.log.Debug("tailer: file is back at a matching path", "path", path)
			t.setGone(f, false)
		}
		f.path = path
		byPath[path] = f
		if f.src.ID == id { // else the stat describes the file that was renamed away
			f.scanSize, f.scanMod, f.scanSeq = fi.Size(), fi.ModTime(), s.scanSeq
		}
	}
	for target, link := range sc.targets {
		if f := byPath[link]; f != nil {
			byPath[target] = f
		}
	}
	for _, f := range s.files {
		if !seen[f] && !f.gone {
			t.log.Debug("tailer: file left its path", "path", f.path)
			t.setGone(f, true)
			t.enqueue(f)
			t.wakeAt(time.Now().Add(t.goneRecheck))
		}
	}
	s.byPath = byPath
	s.alias = sc.alias
	if s.initial && len(s.restore) > 0 {
		t.findRotated(sc.dirs)
	}
	t.m.FilesWatched.Set(float64(len(s.files)))
	t.updateWatches(sc.dirs)
	return nil
}

// updateWatches watches the directories the walk did not (ancestors waiting for a pattern's
// base, directories of symlinked files' targets) and drops the watches no longer needed.
func (t *Tailer) updateWatches(dirs map[string]bool) {
	s := t.st
	if s.watcher == nil {
		return
	}
	added := false
	for d := range dirs {
		if t.watchDir(d) {
			added = true
		}
	}
	for d := range s.watched {
		if !dirs[d] {
			_ = s.watcher.Remove(d)
			delete(s.watched, d)
			delete(s.marks, d)
		}
	}
	if added {
		// These were listed (or their files stated) before the watch existed: look again.
		t.scheduleRescan()
	}
}

// watchDir adds an fsnotify watch for d unless it has one; it reports whether it added one.
// A failure other than d being gone switches to polling.
func (t *Tailer) watchDir(d string) bool {
	s := t.st
	if s.watcher == nil || s.watched[d] {
		return false
	}
	add := s.watcher.Add
	if t.addWatch != nil {
		add = t.addWatch
	}
	if err := add(d); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false // gone since the walk; its parent's event brings us back
		}
		if !s.polling {
			t.log.Warn("tailer: cannot watch directory, polling every second", "dir", d, "err", err)
			s.polling = true
			if np := time.Now().Add(t.fallbackPoll); !s.nextPoll.IsZero() && np.Before(s.nextPoll) {
				s.nextPoll = np
				t.wakeAt(np)
			}
		}
		return false
	}
	s.watched[d] = true
	m := dirMark{remote: remoteFS(d)}
	if fi, err := os.Stat(d); err == nil {
		m.mod = fi.ModTime() // a change before this is found by the rescan that follows an Add
	}
	s.marks[d] = m
	return true
}

// remoteFS reports whether dir is on a file system where inotify does not see every write:
// network file systems (changes made by other hosts) and FUSE. Unknown: treated as remote.
func remoteFS(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return true
	}
	switch int64(st.Type) {
	case 0x6969, // NFS
		0x517b,     // SMB
		0xff534d42, // CIFS
		0xfe534d42, // SMB2
		0x65735546, // FUSE
		0x00c36400, // Ceph
		0x01021997, // 9P
		0x5346414f, // AFS
		0x01161970, // GFS2
		0x7461636f, // OCFS2
		0x0bd00bd0: // Lustre
		return true
	}
	return false
}

func fileID(fi fs.FileInfo) FileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return FileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}
	}
	return FileID{}
}

func (t *Tailer) fileErr(path string, err error) {
	t.m.FileErrors.Inc()
	if t.opts.FileError != nil {
		t.opts.FileError(path, err)
	}
	if !t.st.errLogged[path] {
		t.st.errLogged[path] = true
		t.log.Warn("tailer: cannot read file, retrying on the next poll", "path", path, "err", err)
	}
}

// findRotated looks, at start, for files that have stored positions but no longer sit at a
// matching path: a rotation happened while the agent was down (or before it had read them to
// their end). Their rest is read, then they are retired like any file that left its path.
// Only the watched directories are searched, which is where rotation renames files to.
func (t *Tailer) findRotated(dirs map[string]bool) {
	s := t.st
	for dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue
			}
			if _, ok := s.restore[fileID(info)]; !ok {
				continue
			}
			path := filepath.Join(dir, e.Name())
			if t.excluded(path) {
				continue
			}
			if f := t.track(path); f != nil {
				t.log.Info("tailer: reading the rest of a file rotated while stopped", "path", path)
				t.setGone(f, true)
				t.wakeAt(time.Now().Add(t.goneRecheck))
			}
			if len(s.restore) == 0 {
				return
			}
		}
	}
}

// trackMoved looks in dir for the file with identity id, which a walk saw at a matching path
// but which was renamed before it could be opened, and reads it to its end like any file
// that left its path. Rotation renames within the directory; a file moved elsewhere (olddir)
// in that window is not found.
func (t *Tailer) trackMoved(dir string, id FileID) {
	s := t.st
	if s.files[id] != nil {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil || fileID(info) != id {
			continue
		}
		path := filepath.Join(dir, e.Name())
		f := t.track(path)
		if f == nil || f.gone {
			return
		}
		t.log.Info("tailer: reading a file renamed away before it was opened", "path", path)
		t.setGone(f, true) // the next rescan brings it back if path matches
		t.wakeAt(time.Now().Add(t.goneRecheck))
		return
	}
}
