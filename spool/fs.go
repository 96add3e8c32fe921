package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kinship-agent/kinship/internal/atomicfile"
)

// fileSystem is every call the spool makes to the file system, after the directory is created
// and locked: creating, writing, reading, listing, renaming and deleting segment files and
// syncing the directory. It is the fault-injection seam (after hashicorp/raft-wal's VFS):
// tests wrap it to fail the next write, fsync, truncate, delete, rename or directory fsync.
type fileSystem interface {
	// OpenFile opens a file the spool writes: the active segment, a segment being cut, a temp file.
	OpenFile(name string, flag int, perm os.FileMode) (segFile, error)
	// Open opens a segment for reading.
	Open(name string) (readFile, error)
	Remove(name string) error
	Rename(oldpath, newpath string) error
	ReadDir(dir string) ([]os.DirEntry, error)
	// SyncDir makes a create, rename or remove in dir durable.
	SyncDir(dir string) error
}

// segFile is what the writer needs of a file it writes.
type segFile interface {
	WriteAt(p []byte, off int64) (int, error)
	ReadAt(p []byte, off int64) (int, error)
	Sync() error
	Truncate(size int64) error
	// Allocate reserves disk blocks for [off, off+n) without changing the file's size
	// (fallocate FALLOC_FL_KEEP_SIZE), so recovery, Inspect and readers see exactly the
	// bytes written; see preallocLocked.
	Allocate(off, n int64) error
	Close() error
}

// readFile is what readers and recovery need of a segment they only read.
type readFile interface {
	io.ReaderAt
	Stat() (os.FileInfo, error)
	Close() error
}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (segFile, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// osFile is an *os.File with Allocate.
type osFile struct{ *os.File }

func (f osFile) Allocate(off, n int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	if cerr := rc.Control(func(fd uintptr) {
		err = unix.Fallocate(int(fd), unix.FALLOC_FL_KEEP_SIZE, off, n)
	}); cerr != nil {
		return cerr
	}
	return err
}

func (osFS) Open(name string) (readFile, error) { return os.Open(name) }

func (osFS) Remove(name string) error                  { return os.Remove(name) }
func (osFS) Rename(oldpath, newpath string) error      { return os.Rename(oldpath, newpath) }
func (osFS) ReadDir(dir string) ([]os.DirEntry, error) { return os.ReadDir(dir) }
func (osFS) SyncDir(dir string) error                  { return atomicfile.SyncDir(dir) }

// writeFileAtomic makes dir/name hold exactly data, or leaves it untouched, through
// internal/atomicfile (temp file, fsync, close, rename, fsync of the directory) on the spool's
// file system, so a test's faults reach every step. Every small file the spool creates (a
// segment's header, a .broken copy) goes through here.
func writeFileAtomic(fsys fileSystem, dir, name string, data []byte) error {
	return atomicfile.WriteFS(atomicFS{fsys}, filepath.Join(dir, name), data, 0o600)
}

// atomicFS is the spool's file system as internal/atomicfile sees it.
type atomicFS struct{ fs fileSystem }

func (a atomicFS) OpenFile(name string, flag int, perm os.FileMode) (atomicfile.File, error) {
	f, err := a.fs.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &sequentialWriter{segFile: f}, nil
}

func (a atomicFS) Rename(oldpath, newpath string) error { return a.fs.Rename(oldpath, newpath) }
func (a atomicFS) Remove(name string) error             { return a.fs.Remove(name) }
func (a atomicFS) SyncDir(dir string) error             { return a.fs.SyncDir(dir) }

// sequentialWriter turns WriteAt into Write, for atomicfile.
type sequentialWriter struct {
	segFile
	off int64
}

func (w *sequentialWriter) Write(p []byte) (int, error) {
	n, err := w.WriteAt(p, w.off)
	w.off += int64(n)
	return n, err
}

// checkLock notices when Dir no longer names the directory the spool locked (removed, or
// renamed and replaced): it says so once, loudly, and makes Append fail with ErrLockLost
// from then on. Called after each commit, so a spool that writes finds out within a commit
// interval, and an idle one costs nothing.
func (s *Spool) checkLock() {
	if s.lockLost.Load() {
		return
	}
	var held, named syscall.Stat_t
	err := syscall.Fstat(int(s.lock.Fd()), &held)
	if err != nil {
		return // cannot tell; the descriptor itself is fine
	}
	if err = syscall.Stat(s.opts.Dir, &named); err == nil && named.Dev == held.Dev && named.Ino == held.Ino {
		return
	}
	if err == nil {
		err = errors.New("another directory has the name now")
	}
	s.lockLost.Store(true)
	s.log.Error("spool: the spool directory was removed or replaced while in use; appends stop, the flow must be restarted",
		"dir", s.opts.Dir, "err", err)
	s.mu.Lock()
	s.broadcastLocked() // a waiting Append returns
	s.mu.Unlock()
}

// lockDir takes an exclusive flock on the directory itself, opened O_RDONLY|O_DIRECTORY, so
// that two processes (or two Spools in one process: flock locks belong to the open file
// description) cannot share it. A lock file inside the directory could be unlinked from under
// a running agent (an operator cleaning up), after which a second agent would lock a new file
// of the same name and both would write the same segments; the directory cannot be removed
// while it holds segments, and a new directory of the same name is a different inode that
// holds none of them.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another spool: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}
