// Package tmpfstest mounts small file systems for tests that must fill a real disk (the
// spool's and the agent's disk-full tests).
package tmpfstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// Mount mounts a tmpfs of size bytes on a fresh directory and unmounts it when the test
// ends. It needs root (CAP_SYS_ADMIN), which this project's machines and CI have: without it
// the test fails, it does not skip.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("this test needs root/CAP_SYS_ADMIN to mount a small tmpfs: mount: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
