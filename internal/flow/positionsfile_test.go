package flow

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kinship-agent/kinship/tailer"
)

// positions.json is rewritten whole at every checkpoint in which a position moved, once a
// second while lines trickle in, however many files are watched: with 10,000 files, the
// indented form (a line per field) was most of an agent's CPU while 10 lines a second
// arrived (bench/idle.sh). Compact JSON, one file per line, stays greppable by path, and
// reads back the same, as do files written indented by older agents.
func TestPositionsFileOneFilePerLine(t *testing.T) {
	dir := t.TempDir()
	snap := map[tailer.FileID]position{}
	seqs := map[tailer.FileID]uint64{}
	for i := range 3 {
		id := tailer.FileID{Dev: 1, Ino: uint64(10 + i)}
		snap[id] = position{ID: id, Path: fmt.Sprintf(`/var/log/a "%d".log`, i), Offset: int64(100 * i),
			Fingerprint: tailer.Fingerprint{Len: 64, Sum: uint64(i + 1)}, Tail: tailer.Fingerprint{Len: 8, Sum: uint64(i + 7)}}
		seqs[id] = uint64(i + 2)
	}
	gone := position{ID: tailer.FileID{Dev: 1, Ino: 99}, Path: "/var/log/a.log.1", Offset: 5000}
	path := filepath.Join(dir, "positions.json")
	if err := savePositions(path, 9, snap, seqs, []retiredFile{{pos: gone, seq: 4}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		want := fmt.Sprintf(`"path":"/var/log/a \"%d\".log"`, i)
		if n := countLinesWith(b, want); n != 1 {
			t.Errorf("%d lines hold %s, want 1: the file's whole entry on one line:\n%s", n, want, b)
		}
		if n := countLinesWith(b, fmt.Sprintf(`"ino":%d,`, 10+i)); n != 1 {
			t.Errorf("ino %d on %d lines, want on its path's line:\n%s", 10+i, n, b)
		}
	}
	if n := countLinesWith(b, `"path":"/var/log/a.log.1"`); n != 1 {
		t.Errorf("the retired file is on %d lines, want 1:\n%s", n, b)
	}

	pf, found, err := loadPositions(path)
	if err != nil || !found {
		t.Fatalf("load: found %v, %v", found, err)
	}
	if pf.Seq != 9 || len(pf.Files) != 3 || len(pf.Retired) != 1 || pf.Retired[0].Seq != 4 || pf.Retired[0].position() != gone {
		t.Fatalf("loaded %+v", pf)
	}
	for i, f := range pf.Files {
		if i > 0 && pf.Files[i-1].Path >= f.Path {
			t.Errorf("files not sorted by path: %q before %q", pf.Files[i-1].Path, f.Path)
		}
		if p := f.position(); p != snap[p.ID] || f.Seq != seqs[p.ID] {
			t.Errorf("loaded %+v seq %d, saved %+v seq %d", p, f.Seq, snap[p.ID], seqs[p.ID])
		}
	}

	// An older agent's file, indented, is read the same.
	indented, err := json.MarshalIndent(pf, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, indented, 0o600); err != nil {
		t.Fatal(err)
	}
	old, _, err := loadPositions(path)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(old) != fmt.Sprint(pf) {
		t.Fatalf("indented file loaded as %+v, want %+v", old, pf)
	}
}

func countLinesWith(b []byte, s string) int {
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			n++
		}
	}
	return n
}

// The checkpoint loop's encoder keeps the last save's order: files that came, left or were
// renamed since must still be saved, all of them, sorted by path.
func TestPositionsEncoderFollowsFileChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "positions.json")
	snap := map[tailer.FileID]position{}
	add := func(ino uint64, p string) {
		id := tailer.FileID{Dev: 1, Ino: ino}
		snap[id] = position{ID: id, Path: p, Offset: int64(ino)}
	}
	add(1, "/var/log/b.log")
	add(2, "/var/log/c.log")
	add(3, "/var/log/d.log")
	var enc positionsEncoder
	check := func(want ...string) {
		t.Helper()
		if err := enc.save(path, 1, snap, nil, nil); err != nil {
			t.Fatal(err)
		}
		pf, _, err := loadPositions(path)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range pf.Files {
			got = append(got, f.Path)
			if p := f.position(); p != snap[p.ID] {
				t.Errorf("saved %+v, want %+v", p, snap[p.ID])
			}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("saved %q, want %q", got, want)
		}
	}
	check("/var/log/b.log", "/var/log/c.log", "/var/log/d.log")
	snap[tailer.FileID{Dev: 1, Ino: 1}] = position{ID: tailer.FileID{Dev: 1, Ino: 1}, Path: "/var/log/b.log", Offset: 50}
	check("/var/log/b.log", "/var/log/c.log", "/var/log/d.log")
	add(4, "/var/log/a.log")
	check("/var/log/a.log", "/var/log/b.log", "/var/log/c.log", "/var/log/d.log")
	delete(snap, tailer.FileID{Dev: 1, Ino: 2})
	add(5, "/var/log/c.log") // rotated: a new file at the same path, same count as before
	check("/var/log/a.log", "/var/log/b.log", "/var/log/c.log", "/var/log/d.log")
	add(3, "/var/log/0.log") // renamed
	check("/var/log/0.log", "/var/log/a.log", "/var/log/b.log", "/var/log/c.log")
}
