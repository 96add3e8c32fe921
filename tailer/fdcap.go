package tailer

import (
	"os"
	"sync/atomic"
	"syscall"
)

// The descriptor cap. A host with more matching files than the process may open
// (LimitNOFILE=1024 and 5,000 files, a container's default) must still read every file, and
// must not take the last descriptors the spool, the connections to the destination and the
// metrics server need. The Tailers of a process share one OpenFiles budget: before opening
// one more descriptor, a Tailer at the budget closes its own least recently read file, idle
// ones (at their end) first. A closed file keeps its identity, offset and place in the read
// queue; reading it again reopens it by path and checks its device, inode, fingerprint and
// tail print before going on from its offset (reopen), so the files are read in turn. Files
// that left their path are never closed for the budget: their path no longer leads to them.
// A Tailer with nothing of its own to close opens anyway (one descriptor over, at most), so
// that a flow is never starved by another's idle files.

const (
	minOpenFiles = 8
	// openMarginMin is the least the budget leaves to the rest of the process; a quarter of
	// the limit is left when that is more.
	openMarginMin = 32
)

// OpenFiles is a descriptor budget shared by the Tailers of one process (Options.OpenFiles).
// Safe for concurrent use.
type OpenFiles struct {
	max  atomic.Int64
	used atomic.Int64
}

// NewOpenFiles returns a budget of max descriptors; 0: derived from RLIMIT_NOFILE, leaving a
// quarter of it (at least 32) to the rest of the process.
func NewOpenFiles(max int) *OpenFiles {
	if max <= 0 {
		max = openFilesFromLimit()
	}
	b := &OpenFiles{}
	b.max.Store(int64(max))
	return b
}

// Max is the current budget; EMFILE lowers it.
func (b *OpenFiles) Max() int { return int(b.max.Load()) }

// Used is how many descriptors the Tailers sharing b hold.
func (b *OpenFiles) Used() int { return int(b.used.Load()) }

func (b *OpenFiles) full() bool { return b.used.Load() >= b.max.Load() }

// lower sets the budget below what was in use when the process could open no more.
func (b *OpenFiles) lower() {
	if n := b.used.Load() - 1; n >= minOpenFiles && n < b.max.Load() {
		b.max.Store(n)
	}
}

// openFilesFromLimit derives the budget from RLIMIT_NOFILE (Go raises the soft limit to the
// hard one at start).
func openFilesFromLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 || rl.Cur > 1<<24 {
		return 1 << 16
	}
	limit := int(rl.Cur)
	return max(limit-max(openMarginMin, limit/4), minOpenFiles)
}

// openCapped opens path after making room under the budget. On EMFILE (the rest of the
// process holds more than the margin) it lowers the budget, closes one more file and tries
// once more.
func (t *Tailer) openCapped(path string, flag int) (*os.File, error) {
	b := t.st.budget
	for b.full() && t.evictOne() {
	}
	fd, err := os.OpenFile(path, flag, 0)
	if err != nil && t.tooManyOpen(err) { // lowers the budget, says so
		if t.evictOne() {
			fd, err = os.OpenFile(path, flag, 0)
		}
	}
	if err != nil {
		return nil, err
	}
	t.st.open++
	b.used.Add(1)
	return fd, nil
}

// release closes a descriptor opened with openFile that no file holds (a copy, a probe).
func (t *Tailer) release(fd *os.File) {
	_ = fd.Close() // read-only: nothing to lose
	t.st.open--
	t.st.budget.used.Add(-1)
}

// closeFD gives f's descriptor back; f keeps its identity and offset.
func (t *Tailer) closeFD(f *file) {
	if f.fd != nil {
		t.release(f.fd)
		f.fd = nil
	}
}

// touch marks f as just read, for the least-recently-read order.
func (t *Tailer) touch(f *file) {
	t.st.useSeq++
	f.used = t.st.useSeq
}

// evictOne closes the Tailer's least recently read file that can be reopened by path, idle
// files first. It reports whether it closed one.
func (t *Tailer) evictOne() bool {
	var victim *file
	victimIdle := false
	for _, f := range t.st.files {
		if f.fd == nil || f.gone {
			continue
		}
		idle := !f.queued && !f.eofSince.IsZero()
		if victim == nil || (idle && !victimIdle) || (idle == victimIdle && f.used < victim.used) {
			victim, victimIdle = f, idle
		}
	}
	if victim == nil {
		return false
	}
	t.closeFD(victim)
	if !victimIdle {
		t.enqueue(victim) // it has more to read: its turn comes again
	}
	return true
}
