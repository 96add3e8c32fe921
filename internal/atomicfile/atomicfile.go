// Package atomicfile writes small state files so that a crash leaves either the old or the
// new content, never a mix: write a temp file, fsync it, close it, rename it over the
// target and fsync the directory so the rename itself is durable.
package atomicfile

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const tmpSuffix = ".tmp"

// FS is the file system Write works through: the seam that lets a test fail any one of its
// steps (OS is the real one). Names are paths.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	// SyncDir makes the creations, renames and removals in dir durable.
	SyncDir(dir string) error
}

// File is what Write needs of the temp file.
type File interface {
	Write(p []byte) (int, error)
	Sync() error
	Close() error
}

// OS is FS on the operating system's file system.
var OS FS = osFS{}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	return os.OpenFile(name, flag, perm)
}
func (osFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error             { return os.Remove(name) }
func (osFS) SyncDir(dir string) error             { return SyncDir(dir) }

// Write replaces path with data atomically and durably. The file gets mode perm (less the
// umask).
func Write(path string, data []byte, perm os.FileMode) error {
	return WriteFS(OS, path, data, perm)
}

// WriteFS is Write through fsys. The temp file is path.<random>.tmp, so that SweepTemp (or
// whoever owns the directory) can remove what a crash left, and two writers of one path do
// not share a temp file.
func WriteFS(fsys FS, path string, data []byte, perm os.FileMode) (err error) {
	var f File
	var tmp string
	for range 10 {
		tmp = path + "." + strconv.FormatUint(uint64(rand.Uint32()), 10) + tmpSuffix
		f, err = fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if !errors.Is(err, os.ErrExist) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("atomicfile: create temp for %s: %w", path, err)
	}
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				_ = f.Close()
			}
			_ = fsys.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync %s: %w", tmp, err)
	}
	closed = true
	if err = f.Close(); err != nil {
		return fmt.Errorf("atomicfile: close %s: %w", tmp, err)
	}
	if err = fsys.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: rename %s: %w", tmp, err)
	}
	return fsys.SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory so that creations, renames and removals in it survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: open dir %s: %w", dir, err)
	}
	serr := d.Sync()
	cerr := d.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("atomicfile: sync dir %s: %w", dir, err)
	}
	return nil
}

// SweepTemp removes temp files a crash left behind in dir by Write.
func SweepTemp(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("atomicfile: sweep %s: %w", dir, err)
	}
	for _, e := range entries {
		if IsTemp(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("atomicfile: sweep %s: %w", dir, err)
			}
		}
	}
	return nil
}

// IsTemp reports whether name is a temp file Write makes.
func IsTemp(name string) bool { return strings.HasSuffix(name, tmpSuffix) }
