package tailer

import (
	"errors"
	"os"
	"syscall"
)

// The descriptor cap. A host with more matching files than the process may open
// (LimitNOFILE=1024 and 5,000 files, a container's default) must still read every file, and
// must not take the last descriptors the spool, the connections to the destination and the
// metrics server need. The Tailer holds at most maxOpen descriptors: before opening one more
// it closes the least recently read file, idle ones (at their end) first. A closed file keeps
// its identity, offset and place in the read queue; reading it again reopens it by path and
// checks its device, inode and fingerprint before going on from its offset (reopen), so the
// files are read in turn. Files that left their path are never closed for the cap: their
// path no longer leads to them.

const (
	minOpenFiles = 8
	// openMarginMin is the least the cap leaves to the rest of the process; a quarter of
	// the limit is left when that is more.
	openMarginMin = 32
)

// openFilesFromLimit derives the cap from RLIMIT_NOFILE (Go raises the soft limit to the hard
// one at start).
func openFilesFromLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 || rl.Cur > 1<<24 {
		return 1 << 16
	}
	limit := int(rl.Cur)
	n := limit - max(openMarginMin, limit/4)
	return max(n, minOpenFiles)
}

// openCapped opens path after making room under the cap. On EMFILE (other parts of the
// process, or other flows, hold more than the margin) it lowers the cap, closes one more file
// and tries once more.
func (t *Tailer) openCapped(path string, flag int) (*os.File, error) {
	s := t.st
	t.makeRoom(s.maxOpen - 1)
	fd, err := os.OpenFile(path, flag, 0)
	if err != nil && (errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) {
		if s.open > minOpenFiles {
			s.maxOpen = min(s.maxOpen, s.open-1)
		}
		t.makeRoom(s.open - 1)
		fd, err = os.OpenFile(path, flag, 0)
	}
	if err != nil {
		return nil, err
	}
	s.open++
	return fd, nil
}

// release closes a descriptor opened with openFile that no file holds (a copy, a probe).
func (t *Tailer) release(fd *os.File) {
	_ = fd.Close() // read-only: nothing to lose
	t.st.open--
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

// makeRoom closes files until at most limit descriptors are held, or no file can be closed.
func (t *Tailer) makeRoom(limit int) {
	s := t.st
	for s.open > limit {
		var victim *file
		for _, f := range s.files {
			if f.fd == nil || f.gone {
				continue
			}
			idle := !f.queued && !f.eofSince.IsZero()
			if victim == nil {
				victim = f
				continue
			}
			vIdle := !victim.queued && !victim.eofSince.IsZero()
			if idle != vIdle {
				if idle {
					victim = f
				}
				continue
			}
			if f.used < victim.used {
				victim = f
			}
		}
		if victim == nil {
			return
		}
		t.closeFD(victim)
		if victim.size > victim.off || victim.eofSince.IsZero() {
			t.enqueue(victim) // it has more to read: its turn comes again
		}
	}
}
