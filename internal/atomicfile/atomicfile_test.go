package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "positions.json")
	for _, content := range []string{"first", "second, longer content"} {
		if err := Write(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read back %q, %v; want %q", got, err, content)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the target", len(entries))
	}
}

func TestSweepTempRemovesOnlyTemps(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "positions.json")
	stale := filepath.Join(dir, "positions.json.123"+tmpSuffix)
	for _, p := range []string{keep, stale} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := SweepTemp(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp still there: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("target removed: %v", err)
	}
}

func TestWriteFailsInMissingDir(t *testing.T) {
	if err := Write(filepath.Join(t.TempDir(), "nope", "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("want an error for a missing directory")
	}
}

// faultFS fails the named step of a write.
type faultFS struct {
	fail string // "open", "write", "sync", "close", "rename", "syncdir"
}

var errInjected = errors.New("injected")

func (f faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if f.fail == "open" {
		return nil, errInjected
	}
	file, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return faultFile{File: file, fail: f.fail}, nil
}

func (f faultFS) Rename(o, n string) error {
	if f.fail == "rename" {
		return errInjected
	}
	return os.Rename(o, n)
}
func (f faultFS) Remove(name string) error { return os.Remove(name) }
func (f faultFS) SyncDir(dir string) error {
	if f.fail == "syncdir" {
		return errInjected
	}
	return SyncDir(dir)
}

type faultFile struct {
	*os.File
	fail string
}

func (f faultFile) Write(p []byte) (int, error) {
	if f.fail == "write" {
		n, _ := f.File.Write(p[:len(p)/2])
		return n, errInjected
	}
	return f.File.Write(p)
}

func (f faultFile) Sync() error {
	if f.fail == "sync" {
		return errInjected
	}
	return f.File.Sync()
}

// A failure at any step leaves the old content in place and no temp file behind (a failed
// directory fsync comes after the rename: the new content is there, but the caller hears
// that it may not be durable).
func TestWriteFSFailureKeepsOldContent(t *testing.T) {
	for _, step := range []string{"open", "write", "sync", "rename", "syncdir"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state")
			if err := Write(path, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			err := WriteFS(faultFS{fail: step}, path, []byte("new"), 0o600)
			if !errors.Is(err, errInjected) {
				t.Fatalf("WriteFS with %s failing: %v, want the injected error", step, err)
			}
			want := "old"
			if step == "syncdir" {
				want = "new"
			}
			if got, _ := os.ReadFile(path); string(got) != want {
				t.Errorf("content %q, want %q", got, want)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("directory holds %d entries, want only the target (no temp left)", len(entries))
			}
		})
	}
}
