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
	// fixed is the part before the first component with a wildcard: what the operator wrote.
	// Links there are the operator's choice and are followed; below it, entries were found
	// by wildcards and links are followed only with Options.FollowSymlinks.
	fixed      string
	fixedDepth int // components of fixed, the leading "" included
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
	pt.fixedDepth = len(pt.comps)
	for i, c := range pt.comps {
		if strings.ContainsAny(c, "*?[{\\") {
			pt.fixedDepth = i
			break
		}
	}
	pt.fixed = strings.Join(pt.comps[:pt.fixedDepth], "/")
	if pt.fixedDepth == len(pt.comps) {
		pt.fixed = filepath.Dir(p) // no wildcard: the file itself is what the operator wrote
	}
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
	files   map[string]fs.FileInfo // matched path -> stat (symlinks followed where allowed)
	okDirs  map[string]bool        // real paths of the directories walked without following a link a wildcard found
	linkOK  map[string]bool        // matched path that may itself be a link (follow_symlinks, or the operator wrote it)
	targets map[string]string      // symlink target -> matched symlink path
	dirs    map[string]bool        // directories to watch, by their real path when reached through a link
	alias   map[string]string      // real path of a directory reached through a link -> its path under the link
	visited map[FileID]bool        // directories walked for the current pattern
	failed  []string               // directories that exist but could not be stated or listed
	matched map[string]int         // pattern -> paths it matched (files of size 0 included)
	skipped map[string]bool        // paths not read on purpose (links, state), as counted and logged once
	canon   string                 // the current pattern's fixed part with its links resolved ("" unknown)
}

// walk lists dir (the path the pattern sees) and descends where the pattern can still match.
// real is dir's path without symlinked directories on the way from the pattern's base: the
// path that is watched, so that events name files the way the kernel sees them; alias maps
// them back. Symlinked directories are followed where links are allowed (see linkAllowed);
// a directory is walked once per pattern, identified by device and inode, so a link to an
// ancestor ends the descent instead of looping, and a directory reached by two paths is
// listed under the first. found says dir was found by listing its parent (not the pattern's
// base): without follow_symlinks it must then not be a link itself.
func (t *Tailer) walk(sc *scan, p *pattern, dir, real string, found bool) {
	stat := os.Stat
	if found && !t.linkAllowed(p, dir) {
		stat = os.Lstat // listed as a directory, but it may have been swapped for a link since
	}
	di, err := stat(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			t.listErr(sc, dir, err)
		}
		return
	}
	if !di.IsDir() {
		return
	}
	id := fileID(di)
	if sc.visited[id] {
		return
	}
	sc.visited[id] = true
	if t.stateDir(id, "") {
		t.skip(sc, dir, "state_dir", "tailer: not reading the agent's own state directory")
		return
	}
	if !t.opts.FollowSymlinks && sc.canon != "" && strings.HasPrefix(dir, p.fixed) {
		sc.okDirs[sc.canon+strings.TrimPrefix(dir, p.fixed)] = true
	}
	sc.dirs[real] = true
	if real != dir {
		sc.alias[real] = dir
	}
	// Watch before listing: a file renamed, created or removed after the listing then produces
	// an event, and no change can fall between the listing and the watch.
	t.watchDir(real)
	entries, err := t.readDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			t.listErr(sc, dir, err)
		}
		return
	}
	t.listedAgain(dir)
	for _, e := range entries {
		full := filepath.Join(dir, e.Name())
		typ := e.Type()
		if typ.IsDir() {
			if p.canDescend(full) {
				t.walk(sc, p, full, filepath.Join(real, e.Name()), true)
			}
			continue
		}
		if !typ.IsRegular() && typ&fs.ModeSymlink == 0 {
			continue
		}
		linkOK := t.linkAllowed(p, full)
		if typ&fs.ModeSymlink != 0 && !linkOK {
			if p.canDescend(full) || t.matchesPattern(p, full) {
				sc.matched[p.raw]++
				t.skip(sc, full, "symlink", "tailer: not following a symbolic link found by a wildcard (set follow_symlinks to read it)")
			}
			continue
		}
		if typ&fs.ModeSymlink != 0 && p.canDescend(full) {
			if fi, err := os.Stat(full); err == nil && fi.IsDir() {
				if target, err := filepath.EvalSymlinks(full); err == nil {
					if t.stateDir(FileID{}, target) {
						t.skip(sc, full, "state_dir", "tailer: not reading the agent's own state directory")
						continue
					}
					t.walk(sc, p, full, target, false)
				}
				continue
			}
		}
		if !t.matchesPattern(p, full) {
			continue
		}
		sc.matched[p.raw]++
		if _, ok := sc.files[full]; ok {
			continue
		}
		stat := os.Stat
		if !linkOK {
			stat = os.Lstat // a link swapped in since the listing is not regular: not read
		}
		fi, err := stat(full)
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
		if linkOK {
			sc.linkOK[full] = true
		}
		if typ&fs.ModeSymlink != 0 {
			if target, err := filepath.EvalSymlinks(full); err == nil {
				sc.targets[target] = full
				sc.dirs[filepath.Dir(target)] = true
			}
		}
	}
}

func (t *Tailer) matchesPattern(p *pattern, path string) bool {
	return doublestar.PathMatchUnvalidated(p.raw, path) && !t.excluded(path)
}

// listErr notes a directory that exists but cannot be stated or listed right now (a
// permission change during a package upgrade, EIO or ESTALE on NFS, EMFILE): the files known
// under it keep their state until it can be listed again, instead of being taken for gone.
func (t *Tailer) listErr(sc *scan, dir string, err error) {
	sc.failed = append(sc.failed, dir)
	if t.tooManyOpen(err) {
		return
	}
	t.m.FileErrors.Inc()
	if t.opts.FileError != nil {
		t.opts.FileError(dir, err)
	}
	if !t.st.errLogged[dir] {
		t.st.errLogged[dir] = true
		t.log.Warn("tailer: cannot list directory; its files keep their positions until it can be listed again", "dir", dir, "err", err)
	}
}

// listedAgain clears a directory's listing error, saying so once.
func (t *Tailer) listedAgain(dir string) {
	if t.st.errLogged[dir] {
		delete(t.st.errLogged, dir)
		t.log.Info("tailer: directory can be listed again", "dir", dir)
		if t.opts.FileError != nil {
			t.opts.FileError(dir, nil)
		}
	}
}

// underFailed reports whether path is below a directory that could not be listed this scan.
func (sc *scan) underFailed(path string) bool {
	for _, d := range sc.failed {
		if strings.HasPrefix(path, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// rescan walks every pattern, tracks new files, notices files that left their paths, and
// brings the directory watches up to date.
func (t *Tailer) rescan() error {
	s := t.st
	s.scanSeq++
	sc := &scan{files: map[string]fs.FileInfo{}, okDirs: map[string]bool{}, linkOK: map[string]bool{},
		targets: map[string]string{}, dirs: map[string]bool{}, alias: map[string]string{},
		matched: map[string]int{}, skipped: map[string]bool{}}
	t.refreshStateDirs()
	for i := range t.pats {
		p := &t.pats[i]
		sc.visited = map[FileID]bool{}
		base := p.base
		for {
			fi, err := os.Stat(base)
			if err == nil && fi.IsDir() {
				break
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				// There, but not reachable right now: not a reason to forget its files.
				t.listErr(sc, base, err)
				break
			}
			parent := filepath.Dir(base)
			if parent == base {
				break
			}
			base = parent
		}
		if sc.underFailed(p.base + "/") {
			continue
		}
		sc.canon = ""
		if c, err := filepath.EvalSymlinks(p.fixed); err == nil {
			sc.canon = c
		}
		if base == p.base {
			if t.stateDir(FileID{}, sc.canon) {
				t.skip(sc, p.base, "state_dir", "tailer: not reading the agent's own state directory")
				continue
			}
			t.walk(sc, p, base, base, false)
		} else {
			// The base does not exist yet: watch the nearest ancestor for it to appear.
			sc.dirs[base] = true
		}
	}

	s.okDirs = sc.okDirs
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
			t.noteEmpty(path)
			continue
		}
		if f == nil {
			if t.beforeTrack != nil {
				t.beforeTrack(path)
			}
			f = t.trackAs(path, opening{id: id, linkOK: sc.linkOK[path]})
			if (f == nil && !s.skipped[path]) || (f != nil && f.src.ID != id) {
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
		if seen[f] || f.gone {
			continue
		}
		if sc.underFailed(f.path) {
			// Its directory could not be listed: nothing says it left. It keeps its path,
			// descriptor and offset; the next listing decides.
			byPath[f.path] = f
			continue
		}
		t.log.Debug("tailer: file left its path", "path", f.path)
		t.setGone(f, true)
		t.enqueue(f)
		t.wakeAt(time.Now().Add(t.goneRecheck))
	}
	for p := range s.skipped {
		if !sc.skipped[p] && sc.files[p] == nil {
			delete(s.skipped, p) // gone: counted again if it comes back
		}
	}
	s.byPath = byPath
	s.alias = sc.alias
	if s.initial && len(s.restore) > 0 {
		t.findRotated(sc.dirs)
	}
	t.reportPatterns(sc)
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
		entries, err := t.readDir(dir)
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
	entries, err := t.readDir(dir)
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
