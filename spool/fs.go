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

// lockDir takes an exclusive flock on dir/LOCK so that two processes (or two Spools in one
// process: flock locks belong to the open file description) cannot share a directory.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another spool: %w", dir, ErrLocked)
		}
		return nil, err
	}
	return f, nil
}
