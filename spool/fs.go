package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// segFile is what the writer needs of the active segment. It is the fault-injection seam:
// tests wrap it to fail the next write or sync.
type segFile interface {
	WriteAt(p []byte, off int64) (int, error)
	ReadAt(p []byte, off int64) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

// fileSystem opens the files the spool writes. Reads of sealed data go through os directly.
type fileSystem interface {
	OpenFile(name string, flag int, perm os.FileMode) (segFile, error)
}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (segFile, error) {
	return os.OpenFile(name, flag, perm)
}

// syncDir makes a create, rename or remove in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeFileAtomic makes name hold exactly data, or leaves it untouched: temp file, fsync,
// close, rename, fsync of the directory. Every small file the spool creates goes through here.
func writeFileAtomic(fsys fileSystem, dir, name string, data []byte) (err error) {
	final := filepath.Join(dir, name)
	tmp := final + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.WriteAt(data, 0); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(dir)
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
