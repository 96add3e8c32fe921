package kacheckpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/kacheckpoint/kacheckpointtest"
)

func sqlite3(t testing.TB, db, script string) []byte {
	t.Helper()
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Fatalf("sqlite3 is needed (scripts/test-deps.sh installs it): %v", err)
	}
	cmd := exec.Command(bin, "-json", db)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
	return out
}

// The reader reads what SQLite itself reads, on a database large enough for interior pages
// and with values that need overflow pages (small pages make both appear with few rows).
func TestReadTableMatchesSQLite(t *testing.T) {
	for _, pageSize := range []int{512, 4096, 65536} {
		t.Run(fmt.Sprint(pageSize), func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "checkpoints")
			var rows []kacheckpointtest.Row
			for i := range 400 {
				path := fmt.Sprintf("/var/log/app/%d-ünïcode'.log", i)
				switch i % 50 {
				case 7:
					path = "/var/log/" + strings.Repeat("long/", 1000) + fmt.Sprint(i) // several overflow pages
				case 8:
					path = "/var/log/" + strings.Repeat("a", pageSize-40) + fmt.Sprint(i) // just past the local limit
				}
				rows = append(rows, kacheckpointtest.Row{Flow: fmt.Sprintf("kinesis:s%d:/var/log/app/*.log", i%3), Path: path,
					FileID: fmt.Sprintf("(dev=%x,ino=%d)", 0x803+i, 1<<40+i), LastModified: 1700000000000 + int64(i),
					Size: int64(i) << 33, Offset: int64(i) * 127, LastUpdated: time.Date(2026, 12, 7, 10, 0, i%60, 123e6, time.UTC)})
			}
			kacheckpointtest.Write(t, db, fmt.Sprintf("pragma page_size=%d;\n", pageSize), rows...)

			got, err := Read(db)
			if err != nil {
				t.Fatal(err)
			}
			var want []map[string]any
			if err := json.Unmarshal(sqlite3(t, db, "select * from FILE_CHECKPOINTS order by rowid;"), &want); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) || len(got) != len(rows) {
				t.Fatalf("read %d rows, sqlite3 %d, wrote %d", len(got), len(want), len(rows))
			}
			for i, w := range want {
				g := got[i]
				if g.Flow != w["flow"] || g.Path != w["path"] || g.FileID != w["fileId"] ||
					float64(g.Offset) != w["offset"] || float64(g.Size) != w["size"] || float64(g.LastModified) != w["lastModifiedTime"] ||
					g.LastUpdated.Format("2006-01-02 15:04:05.000") != w["lastUpdated"] {
					t.Fatalf("row %d: read %+v, sqlite3 says %v", i, g, w)
				}
				if !reflect.DeepEqual(g, Checkpoint(rows[i])) {
					t.Fatalf("row %d: read %+v, wrote %+v", i, g, rows[i])
				}
			}
		})
	}
}

// Every serial type the record format has comes back as SQLite stores it.
func TestReadTableValueTypes(t *testing.T) {
	db := filepath.Join(t.TempDir(), "types.db")
	sqlite3(t, db, `create table "T" ("a" integer, [b], `+"`c`"+` real, d text, e blob, constraint x unique (a));
insert into T values (0, 1, 1.5, 'x', x'00ff');
insert into T values (-1, 127, -2.25, '', x'');
insert into T values (-129, 32768, 1e300, null, null);
insert into T values (8388608, -8388609, 0.0, 'é', x'01');
insert into T values (2147483648, -140737488355329, 3.0, '9', x'02');
insert into T values (9223372036854775807, -9223372036854775808, -0.5, 'z', x'03');
alter table T add column f text default 'later';`)
	f, err := os.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	tab, err := readTable(f, fi.Size(), "t")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c", "d", "e", "f"}; !reflect.DeepEqual(tab.columns, want) {
		t.Fatalf("columns %q, want %q", tab.columns, want)
	}
	// A REAL with an integral value is stored as an integer (SQLite converts it back on
	// read; the file holds the integer).
	want := [][]value{
		{int64(0), int64(1), 1.5, "x", []byte{0, 0xff}},
		{int64(-1), int64(127), -2.25, "", []byte{}},
		{int64(-129), int64(32768), 1e300, nil, nil},
		{int64(8388608), int64(-8388609), int64(0), "é", []byte{1}},
		{int64(2147483648), int64(-140737488355329), int64(3), "9", []byte{2}},
		{int64(9223372036854775807), int64(-9223372036854775808), -0.5, "z", []byte{3}},
	}
	if !reflect.DeepEqual(tab.rows, want) {
		t.Fatalf("rows\n%#v\nwant\n%#v", tab.rows, want)
	}
}

func TestReadRefusesWhatItCannotReadFaithfully(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "checkpoints")
	kacheckpointtest.Write(t, db, "")

	if _, err := Read(db); err != nil {
		t.Fatalf("empty table: %v", err)
	}
	// A hot journal: the agent died inside a transaction; the main file may be half-written.
	j := append([]byte{0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7}, make([]byte, 504)...)
	if err := os.WriteFile(db+"-journal", j, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(db); err == nil || !strings.Contains(err.Error(), "hot journal") {
		t.Fatalf("hot journal: %v", err)
	}
	// A zeroed journal header is what SQLite leaves after a commit in PERSIST mode: not hot.
	if err := os.WriteFile(db+"-journal", make([]byte, 512), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(db); err != nil {
		t.Fatalf("cold journal: %v", err)
	}
	if err := os.WriteFile(db+"-wal", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(db); err == nil || !strings.Contains(err.Error(), "-wal") {
		t.Fatalf("wal: %v", err)
	}

	other := filepath.Join(dir, "other.db")
	sqlite3(t, other, "create table x(a);")
	if _, err := Read(other); !errors.Is(err, ErrNoTable) {
		t.Fatalf("no table: %v", err)
	}
	notDB := filepath.Join(dir, "agent.json")
	if err := os.WriteFile(notDB, []byte(`{"flows": []}`+strings.Repeat(" ", 200)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(notDB); err == nil || !strings.Contains(err.Error(), "not an SQLite") {
		t.Fatalf("not a database: %v", err)
	}
}

// Bytes from disk: a corrupt or hostile file ends in an error, never a panic, a hang or an
// allocation its size does not justify.
func FuzzReadTable(f *testing.F) {
	dir := f.TempDir()
	for i, ps := range []int{512, 1024} {
		db := filepath.Join(dir, fmt.Sprint(i))
		var rows []kacheckpointtest.Row
		for j := range 12 {
			rows = append(rows, kacheckpointtest.Row{Flow: "kinesis:s:/a/*.log", Path: fmt.Sprintf("/a/%d%s.log", j, strings.Repeat("p", j*100)),
				FileID: "(dev=803,ino=12)", Offset: int64(j), LastUpdated: time.Unix(1.8e9, 0)})
		}
		kacheckpointtest.Write(f, db, fmt.Sprintf("pragma page_size=%d;\n", ps), rows...)
		b, err := os.ReadFile(db)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := readTable(strings.NewReader(string(b)), int64(len(b)), "FILE_CHECKPOINTS")
		if err == nil && tab == nil {
			t.Fatal("no table and no error")
		}
	})
}

func TestVarint(t *testing.T) {
	for _, c := range []struct {
		in []byte
		v  uint64
		n  int
	}{
		{[]byte{0x00}, 0, 1},
		{[]byte{0x7f}, 127, 1},
		{[]byte{0x81, 0x00}, 128, 2},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ^uint64(0), 9},
		{[]byte{0x81}, 0, 0},
		{nil, 0, 0},
	} {
		if v, n := varint(c.in); v != c.v || n != c.n {
			t.Errorf("varint(% x) = %d, %d; want %d, %d", c.in, v, n, c.v, c.n)
		}
	}
}
