package flow

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/kinship-agent/kinship/tailer"
)

// deleter is delete_after_shipped: after acknowledgements, the checkpoint loop removes the
// rotated files matching the flow's globs whose every line is acknowledged. Never deleted:
// a file this flow does not know by identity (it never read it), the newest file under a
// paths pattern that matches it (the live file), a file modified within close_inactive (a
// writer may still have it), a file with a partial last line, and a file that another flow
// of the process reads and has not shipped yet (Deps.ShippedElsewhere). Used by the
// checkpoint loop's goroutine only.
type deleter struct {
	globs     []string
	quiet     time.Duration // close_inactive: how long a file must not have changed
	lastAcked uint64
	rounds    int
}

// deleteSweepEvery bounds how many checkpoint rounds pass without a sweep while nothing is
// acknowledged: files also become deletable by growing old (close_inactive).
const deleteSweepEvery = 10

func newDeleter(globs []string, closeInactive time.Duration) *deleter {
	if len(globs) == 0 {
		return nil
	}
	if closeInactive <= 0 {
		closeInactive = 5 * time.Minute
	}
	return &deleter{globs: globs, quiet: closeInactive}
}

// deleteShipped runs one round: a sweep when acknowledgements moved (or every
// deleteSweepEvery rounds), nothing otherwise.
func (f *Flow) deleteShipped(now time.Time) {
	d := f.del
	if d == nil {
		return
	}
	acked := f.spool.AckedThrough()
	d.rounds++
	if acked == d.lastAcked && d.rounds < deleteSweepEvery {
		return
	}
	d.lastAcked, d.rounds = acked, 0
	newest := map[string]string{} // per paths pattern, its newest file (this sweep)
	for _, g := range d.globs {
		matches, err := doublestar.FilepathGlob(g, doublestar.WithFilesOnly(), doublestar.WithNoFollow())
		if err != nil {
			f.log.Warn("delete_after_shipped: cannot list", "glob", g, "err", err)
			continue
		}
		for _, path := range matches {
			f.deleteIfShipped(path, now, newest)
		}
	}
}

func (f *Flow) deleteIfShipped(path string, now time.Time, newest map[string]string) {
	d := f.del
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || now.Sub(fi.ModTime()) < d.quiet {
		return
	}
	st := f.FileShipped(path)
	if !st.Shipped || st.Position < 0 {
		return // not shipped, or never tracked here (an empty file): not ours to delete
	}
	for _, p := range f.cfg.Paths {
		if m, _ := doublestar.PathMatch(p, path); !m {
			continue
		}
		n, ok := newest[p]
		if !ok {
			n = newestFile(p)
			newest[p] = n
		}
		if n == path {
			return // the live file
		}
	}
	if ask := f.deps.ShippedElsewhere; ask != nil {
		if ok, why := ask(path); !ok {
			f.log.Debug("delete_after_shipped: kept, another flow has not shipped it", "path", path, "why", why)
			return
		}
	}
	// The file judged is the one removed: nothing was renamed over the path meanwhile.
	again, err := os.Lstat(path)
	if err != nil || !os.SameFile(fi, again) || again.Size() != st.Size {
		return
	}
	if err := os.Remove(path); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			f.log.Warn("delete_after_shipped: cannot delete", "path", path, "err", err)
		}
		return
	}
	f.deps.Metrics.FilesDeleted.Inc()
	f.log.Info("deleted a shipped file (delete_after_shipped)", "path", path, "size", st.Size)
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		f.pos.forgetRetiredFile(tailer.FileID{Dev: uint64(sys.Dev), Ino: uint64(sys.Ino)})
	}
}

// newestFile is the most recently modified file a paths pattern matches now ("" if none).
func newestFile(pattern string) string {
	matches, _ := doublestar.FilepathGlob(pattern, doublestar.WithFilesOnly())
	var best string
	var bestT time.Time
	for _, m := range matches {
		fi, err := os.Stat(m)
		if err != nil {
			continue
		}
		if best == "" || fi.ModTime().After(bestT) {
			best, bestT = m, fi.ModTime()
		}
	}
	return best
}

// forgetRetiredFile drops what is kept of a retired file once it is deleted.
func (p *positions) forgetRetiredFile(id tailer.FileID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.retired[id]; ok {
		p.forgetRetired(id)
	}
}
