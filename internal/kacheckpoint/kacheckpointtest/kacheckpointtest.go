// Package kacheckpointtest writes Kinesis Agent checkpoint databases for tests, with Debian's
// sqlite3 tool (scripts/test-deps.sh installs it), in the agent's own schema and statements
// (SQLiteFileCheckpointStore.java). A test that needs it fails without it, never skips.
package kacheckpointtest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Row is one FILE_CHECKPOINTS row, field for field Row (convertible to
// it; this package cannot import it, as kacheckpoint's own tests use this one).
type Row struct {
	Flow         string
	Path         string
	FileID       string
	LastModified int64
	Size         int64
	Offset       int64
	LastUpdated  time.Time
}

// Schema is the Kinesis Agent's CREATE TABLE, verbatim.
const Schema = `create table if not exists FILE_CHECKPOINTS(       flow text,       path text,       fileId text,       lastModifiedTime bigint,       size bigint,       offset bigint,       lastUpdated datetime,       primary key (flow, path))`

// FileID returns the Kinesis Agent's id of the file at path (Java's UnixFileKey):
// "(dev=HEX,ino=DEC)".
func FileID(t testing.TB, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("(dev=%x,ino=%d)", uint64(st.Dev), int64(st.Ino))
}

// Checkpoint returns the row the Kinesis Agent writes for the file at path, read up to
// offset, updated now.
func Checkpoint(t testing.TB, flow, path string, offset int64) Row {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return Row{Flow: flow, Path: path, FileID: FileID(t, path),
		LastModified: fi.ModTime().UnixMilli(), Size: fi.Size(), Offset: offset, LastUpdated: time.Now().UTC()}
}

// Write creates the database at path with the rows (extra SQL, e.g. "pragma page_size=512;",
// runs first), through the sqlite3 tool.
func Write(t testing.TB, path, pragmas string, rows ...Row) {
	t.Helper()
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Fatalf("sqlite3 is needed to write the Kinesis Agent's checkpoint database (scripts/test-deps.sh installs it): %v", err)
	}
	var b strings.Builder
	b.WriteString(pragmas)
	b.WriteString(Schema + ";\nbegin;\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "insert or ignore into FILE_CHECKPOINTS values(%s, %s, %s, %d, %d, %d, %s);\n",
			quote(r.Flow), quote(r.Path), quote(r.FileID), r.LastModified, r.Size, r.Offset, quote(r.LastUpdated.UTC().Format("2006-01-02 15:04:05.000")))
	}
	b.WriteString("commit;\n")
	cmd := exec.Command(bin, path)
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sqlite3 %s: %v\n%s", path, err, out)
	}
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
