package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/testenv/faultproxy"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
	"github.com/kinship-agent/kinship/internal/testenv/tmpfstest"
)

// fillDisk writes dir/filler until the file system is full, leaving leave bytes free.
func fillDisk(t *testing.T, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			t.Fatal(err)
		}
		free := int64(st.Bavail) * st.Bsize
		if free <= leave {
			return path
		}
		n := min(int64(len(chunk)), free-leave)
		if _, err := f.Write(chunk[:n]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return path
			}
			t.Fatal(err)
		}
	}
}

// TestDiskFullBlocksThenDrains: the agent's state_dir is a small tmpfs that the spool fills
// during a destination outage. Writes fail with ENOSPC: the agent keeps running, counts the
// failures, the tailer stops reading and memory stays flat. Once a filler file is removed and
// the destination is back, every line arrives, none lost.
func TestDiskFullBlocksThenDrains(t *testing.T) { eachWriteMode(t, testDiskFullBlocksThenDrains) }

func testDiskFullBlocksThenDrains(t *testing.T, mode string) {
	mnt := tmpfstest.Mount(t, 16<<20)
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "diskfull", 2)
	proxy := faultproxy.Start(t, endpoint, nil)
	dir := t.TempDir()
	r := newRotator(t, logsDir(t, dir), 2, 0)
	body := kinesisConfig(dir, proxy.URL, "diskfull")
	body = strings.Replace(body, "state_dir: "+dir+"/state", "state_dir: "+mnt+"/state", 1)
	cfg := writeModeConfig(t, dir, mode, body+`    spool:
      segment_bytes: 1MiB
      compression: none # the test's lines compress ~16x: with s2 the spool would not fill the disk in time
metrics:
  listen: 127.0.0.1:0
`)
	a := startAgent(t, proxy.URL, "run", "--config", cfg)
	a.waitLog(t, "metrics listening")
	m := regexp.MustCompile(`metrics listening"? addr=([0-9.:]+)`).FindStringSubmatch(a.log())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", a.log())
	}
	addr := m[1]

	proxy.Cut(true)
	filler := fillDisk(t, mnt, 3<<20) // the spool gets ~3 MiB
	stop := r.background(t, 100)      // ~10,000 lines/s, ~0.9 MB/s
	cutAt := time.Now()
	var fullAt time.Time
	var rssFull, rssMax int64
	for {
		time.Sleep(200 * time.Millisecond)
		rss := rssBytes(t, a.cmd.Process.Pid)
		rssMax = max(rssMax, rss)
		if fullAt.IsZero() && metricValue(t, addr, "kinship_spool_write_errors_total") > 0 {
			fullAt, rssFull = time.Now(), rss
			t.Logf("disk full %v after the cut; RSS %d MiB", fullAt.Sub(cutAt).Round(time.Millisecond), rss>>20)
		}
		if fullAt.IsZero() && time.Since(cutAt) > 40*time.Second {
			t.Fatalf("the spool never filled the disk: the test proves nothing\n%s", a.log())
		}
		if !fullAt.IsZero() && time.Since(fullAt) > 3*time.Second {
			break
		}
	}
	select {
	case <-a.exited:
		t.Fatalf("kinship exited on a full disk: %v\n%s", a.err, a.log())
	default:
	}
	st := status(t, cfg)
	t.Logf("status while full: %+v", st)
	rssEnd := rssBytes(t, a.cmd.Process.Pid)
	if rssEnd > rssFull+32<<20 || rssMax > 150<<20 {
		t.Errorf("RSS %d MiB when full, %d MiB 3 s later, %d MiB at most: memory grows while the disk is full", rssFull>>20, rssEnd>>20, rssMax>>20)
	}
	if n := strings.Count(a.log(), "spool: write failed"); n != 1 {
		t.Errorf("%d log lines for one disk-full episode, want 1", n)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	a.waitLog(t, "spool: writes succeed again")
	proxy.Cut(false)
	stop()
	sc, dups := drainThenStop(t, a, endpoint, "diskfull", r.w)
	t.Logf("drained after the disk filled: %d lines in %d records, %d duplicate lines", len(sc.lines), sc.records, dups)
}
