package kacheckpoint

// A read-only reader of one table of an SQLite 3 database file, enough for the Kinesis
// Agent's FILE_CHECKPOINTS: the file header, the schema table, table b-trees (interior and
// leaf pages), the record format and overflow chains. The format is the one documented as
// "The SQLite Database File Format" (sqlite.org/fileformat2.html), stable since 2004.
//
// Why hand-written, measured (go1.26, amd64, -trimpath as `make build`): a program that opens
// a database through modernc.org/sqlite v1.62.0, the pure-Go SQLite, is 9.96 MB against
// 2.90 MB for the same program without the driver: 7.1 MB more, a third of kinship's whole
// binary (22.6 MB), for reading one table of a few hundred rows once, at a flow's first start.
// The small read-only Go readers (e.g. alicebob/sqlittle) have had no release for years.
// This file is about 450 lines; the whole import, wired, adds 98 KiB (22,599,107 ->
// 22,699,436 bytes). It reads what the sqlite3 tool writes (its tests compare every row with
// sqlite3's own output) and is fuzzed (FuzzReadTable).
//
// What it refuses rather than misreads: UTF-16 databases, WITHOUT ROWID tables, a database
// in WAL mode with a non-empty -wal file, and a hot rollback journal (the writer stopped in
// the middle of a transaction: the main file may hold half of it). Each is an error that
// says how to make the file readable (open it once with sqlite3, which rolls back or
// checkpoints).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// maxDBBytes bounds the file the reader accepts: the Kinesis Agent deletes checkpoints after
// checkpointTimeToLiveDays, so its database stays small; anything much larger is not one.
const maxDBBytes = 1 << 30

// maxRows bounds the rows read, whatever the file claims.
const maxRows = 1 << 20

var sqliteMagic = []byte("SQLite format 3\x00")

// dbFile is an open database file.
type dbFile struct {
	r        io.ReaderAt
	size     int64
	pageSize int
	usable   int // page size less the reserved bytes at the end of each page
	pages    uint32
}

// value is one column's value: nil, int64, float64, string (TEXT) or []byte (BLOB).
type value = any

// table is what readTable returns: the column names in declaration order and the rows.
type table struct {
	columns []string
	rows    [][]value
}

// column returns the index of the named column (case-insensitive, as SQL identifiers are),
// or -1.
func (t *table) column(name string) int {
	for i, c := range t.columns {
		if strings.EqualFold(c, name) {
			return i
		}
	}
	return -1
}

// readTableFile reads every row of the named table of the database at path. The file is
// read twice when a writer changed it meanwhile (its change counter moved), and the read is
// refused after three such changes.
func readTableFile(path, name string) (*table, error) {
	if err := checkJournals(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	for range 3 {
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		before, err := changeCounter(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		t, err := readTable(f, fi.Size(), name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		after, err := changeCounter(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if before == after {
			return t, nil
		}
	}
	return nil, fmt.Errorf("%s: changed while being read three times: is the Kinesis Agent still running? Stop it first", path)
}

func changeCounter(r io.ReaderAt) (uint32, error) {
	var b [4]byte
	if _, err := r.ReadAt(b[:], 24); err != nil {
		return 0, fmt.Errorf("sqlite: read header: %w", err)
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

// checkJournals refuses a database whose last writes are not all in the main file.
func checkJournals(path string) error {
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		return fmt.Errorf("%s-wal holds writes not yet in %s: open the database once with sqlite3 (sqlite3 %s 'pragma wal_checkpoint') while no agent runs, then import again", path, path, path)
	}
	j, err := os.Open(path + "-journal")
	if err != nil {
		return nil // no journal: nothing was in the middle of a write
	}
	defer func() { _ = j.Close() }()
	var hdr [8]byte
	if _, err := io.ReadFull(j, hdr[:]); err != nil {
		return nil // empty or truncated journal: not hot
	}
	if binary.BigEndian.Uint64(hdr[:]) == 0xd9d505f920a163d7 {
		return fmt.Errorf("%s-journal is a hot journal (a write to %s was interrupted): open the database once with sqlite3 (sqlite3 %s 'select count(*) from FILE_CHECKPOINTS') to roll it back, then import again", path, path, path)
	}
	return nil
}

// readTable reads the named table from a database image of the given size.
func readTable(r io.ReaderAt, size int64, name string) (*table, error) {
	db, err := openDB(r, size)
	if err != nil {
		return nil, err
	}
	schema, err := db.rows(1)
	if err != nil {
		return nil, fmt.Errorf("sqlite: schema: %w", err)
	}
	// sqlite_schema: type, name, tbl_name, rootpage, sql.
	for _, row := range schema {
		if len(row) < 5 {
			continue
		}
		typ, _ := row[0].(string)
		tname, _ := row[1].(string)
		if typ != "table" || !strings.EqualFold(tname, name) {
			continue
		}
		root, ok := row[3].(int64)
		if !ok || root < 1 || root > int64(db.pages) {
			return nil, fmt.Errorf("sqlite: table %s: bad root page %v", name, row[3])
		}
		sql, _ := row[4].(string)
		cols, err := tableColumns(sql)
		if err != nil {
			return nil, fmt.Errorf("sqlite: table %s: %w", name, err)
		}
		rows, err := db.rows(uint32(root))
		if err != nil {
			return nil, fmt.Errorf("sqlite: table %s: %w", name, err)
		}
		return &table{columns: cols, rows: rows}, nil
	}
	return nil, fmt.Errorf("sqlite: no table %s: %w", name, errNoTable)
}

var errNoTable = errors.New("not in the database")

func openDB(r io.ReaderAt, size int64) (*dbFile, error) {
	if size > maxDBBytes {
		return nil, fmt.Errorf("sqlite: %d bytes is more than a checkpoint database takes (at most %d)", size, maxDBBytes)
	}
	var h [100]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return nil, fmt.Errorf("not an SQLite database (no 100-byte header: %w)", err)
	}
	if !bytes.Equal(h[:16], sqliteMagic) {
		return nil, errors.New("not an SQLite 3 database")
	}
	ps := int(binary.BigEndian.Uint16(h[16:18]))
	if ps == 1 {
		ps = 65536
	}
	if ps < 512 || ps > 65536 || ps&(ps-1) != 0 {
		return nil, fmt.Errorf("sqlite: bad page size %d", ps)
	}
	usable := ps - int(h[20])
	if usable < 480 {
		return nil, fmt.Errorf("sqlite: %d reserved bytes per page leave too little", h[20])
	}
	if enc := binary.BigEndian.Uint32(h[56:60]); enc != 1 && enc != 0 {
		return nil, fmt.Errorf("sqlite: text encoding %d (UTF-16) is not read; the Kinesis Agent writes UTF-8", enc)
	}
	// The size in the header is valid only when the writer that set it also set the
	// version-valid-for number; older writers leave it stale, so the file size decides then.
	pages := uint32(size / int64(ps))
	if hp := binary.BigEndian.Uint32(h[28:32]); hp != 0 && binary.BigEndian.Uint32(h[24:28]) == binary.BigEndian.Uint32(h[92:96]) {
		pages = min(pages, hp)
	}
	if pages == 0 {
		return nil, errors.New("sqlite: empty database")
	}
	return &dbFile{r: r, size: size, pageSize: ps, usable: usable, pages: pages}, nil
}

func (db *dbFile) page(n uint32) ([]byte, error) {
	if n < 1 || n > db.pages {
		return nil, fmt.Errorf("page %d out of range 1..%d", n, db.pages)
	}
	p := make([]byte, db.pageSize)
	if _, err := db.r.ReadAt(p, int64(n-1)*int64(db.pageSize)); err != nil {
		return nil, fmt.Errorf("read page %d: %w", n, err)
	}
	return p, nil
}

// rows walks the table b-tree rooted at root, depth first, and decodes every record.
// Each page is visited at most once, so a corrupt file with a cycle ends with an error.
func (db *dbFile) rows(root uint32) ([][]value, error) {
	var out [][]value
	seen := map[uint32]bool{}
	stack := []uint32{root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[n] {
			return nil, fmt.Errorf("page %d is reached twice: corrupt b-tree", n)
		}
		seen[n] = true
		p, err := db.page(n)
		if err != nil {
			return nil, err
		}
		hdr := 0
		if n == 1 {
			hdr = 100 // page 1 starts with the file header
		}
		if len(p) < hdr+8 {
			return nil, fmt.Errorf("page %d too short", n)
		}
		kind := p[hdr]
		ncells := int(binary.BigEndian.Uint16(p[hdr+3:]))
		switch kind {
		case 0x05: // interior table page: children, then the right-most pointer
			if len(p) < hdr+12+2*ncells {
				return nil, fmt.Errorf("page %d: %d cells do not fit", n, ncells)
			}
			children := make([]uint32, 0, ncells+1)
			for i := range ncells {
				off := int(binary.BigEndian.Uint16(p[hdr+12+2*i:]))
				if off+4 > db.usable {
					return nil, fmt.Errorf("page %d: cell %d out of the page", n, i)
				}
				children = append(children, binary.BigEndian.Uint32(p[off:]))
			}
			children = append(children, binary.BigEndian.Uint32(p[hdr+8:]))
			// Pushed in reverse so that rows come out in rowid order.
			for i := len(children) - 1; i >= 0; i-- {
				stack = append(stack, children[i])
			}
		case 0x0d: // leaf table page
			if len(p) < hdr+8+2*ncells {
				return nil, fmt.Errorf("page %d: %d cells do not fit", n, ncells)
			}
			for i := range ncells {
				off := int(binary.BigEndian.Uint16(p[hdr+8+2*i:]))
				payload, err := db.leafPayload(p, off, seen)
				if err != nil {
					return nil, fmt.Errorf("page %d cell %d: %w", n, i, err)
				}
				rec, err := decodeRecord(payload)
				if err != nil {
					return nil, fmt.Errorf("page %d cell %d: %w", n, i, err)
				}
				if len(out) >= maxRows {
					return nil, fmt.Errorf("more than %d rows: not a checkpoint table", maxRows)
				}
				out = append(out, rec)
			}
		case 0x02, 0x0a:
			return nil, errors.New("an index b-tree where a table was expected (WITHOUT ROWID tables are not read)")
		default:
			return nil, fmt.Errorf("page %d: not a b-tree page (type %#x)", n, kind)
		}
	}
	return out, nil
}

// leafPayload returns the whole payload of the table leaf cell at off, following its
// overflow chain.
func (db *dbFile) leafPayload(p []byte, off int, seen map[uint32]bool) ([]byte, error) {
	if off >= db.usable {
		return nil, errors.New("cell offset out of the page")
	}
	size, n := varint(p[off:db.usable])
	if n == 0 {
		return nil, errors.New("bad payload size")
	}
	off += n
	if _, n = varint(p[off:db.usable]); n == 0 { // the rowid: not needed
		return nil, errors.New("bad rowid")
	}
	off += n
	if size > uint64(db.size) {
		return nil, fmt.Errorf("payload of %d bytes in a %d-byte file", size, db.size)
	}
	total := int(size)
	// How much of the payload the cell itself holds (the file format's X, M and K for
	// table leaves).
	u := db.usable
	x := u - 35
	local := total
	if total > x {
		m := (u-12)*32/255 - 23
		k := m + (total-m)%(u-4)
		if k <= x {
			local = k
		} else {
			local = m
		}
	}
	if off+local > db.usable {
		return nil, errors.New("payload out of the page")
	}
	out := make([]byte, 0, total)
	out = append(out, p[off:off+local]...)
	if local == total {
		return out, nil
	}
	if off+local+4 > db.usable {
		return nil, errors.New("overflow pointer out of the page")
	}
	next := binary.BigEndian.Uint32(p[off+local:])
	for len(out) < total {
		if next == 0 {
			return nil, errors.New("overflow chain ends early")
		}
		if seen[next] {
			return nil, fmt.Errorf("overflow page %d is reached twice", next)
		}
		seen[next] = true
		op, err := db.page(next)
		if err != nil {
			return nil, err
		}
		chunk := min(total-len(out), u-4)
		out = append(out, op[4:4+chunk]...)
		next = binary.BigEndian.Uint32(op)
	}
	return out, nil
}

// decodeRecord decodes SQLite's record format: a header of serial types, then the values.
func decodeRecord(b []byte) ([]value, error) {
	hlen, n := varint(b)
	if n == 0 || hlen < uint64(n) || hlen > uint64(len(b)) {
		return nil, errors.New("bad record header")
	}
	hdr, body := b[n:hlen], b[hlen:]
	var vals []value
	for len(hdr) > 0 {
		st, n := varint(hdr)
		if n == 0 {
			return nil, errors.New("bad serial type")
		}
		hdr = hdr[n:]
		var v value
		var w int
		switch {
		case st == 0:
			v = nil
		case st >= 1 && st <= 6:
			w = [...]int{0, 1, 2, 3, 4, 6, 8}[st]
			if len(body) < w {
				return nil, errors.New("record shorter than its header says")
			}
			// Big-endian two's complement of w bytes, sign-extended.
			x := int64(int8(body[0]))
			for _, c := range body[1:w] {
				x = x<<8 | int64(c)
			}
			v = x
		case st == 7:
			w = 8
			if len(body) < w {
				return nil, errors.New("record shorter than its header says")
			}
			v = math.Float64frombits(binary.BigEndian.Uint64(body))
		case st == 8:
			v = int64(0)
		case st == 9:
			v = int64(1)
		case st == 10 || st == 11:
			return nil, fmt.Errorf("reserved serial type %d", st)
		default:
			if (st-12)/2 > uint64(len(body)) {
				return nil, errors.New("record shorter than its header says")
			}
			w = int((st - 12) / 2)
			if st%2 == 0 {
				v = bytes.Clone(body[:w])
			} else {
				v = string(body[:w])
			}
		}
		body = body[w:]
		vals = append(vals, v)
	}
	return vals, nil
}

// varint decodes SQLite's big-endian varint (1 to 9 bytes; the ninth byte gives 8 bits). n
// is 0 when b ends first.
func varint(b []byte) (v uint64, n int) {
	for i := 0; i < 9; i++ {
		if i >= len(b) {
			return 0, 0
		}
		if i == 8 {
			return v<<8 | uint64(b[i]), 9
		}
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

// tableColumns returns the column names of a CREATE TABLE statement, in order: the first
// word of each column definition, table constraints left out. Records store values in this
// order (a column added later by ALTER TABLE is missing from older records: NULL).
func tableColumns(sql string) ([]string, error) {
	open := strings.IndexByte(sql, '(')
	closeAt := strings.LastIndexByte(sql, ')')
	if open < 0 || closeAt < open {
		return nil, fmt.Errorf("cannot read its columns from %q", sql)
	}
	if tail := strings.ToUpper(sql[closeAt+1:]); strings.Contains(tail, "WITHOUT") {
		return nil, errors.New("a WITHOUT ROWID table (not read)")
	}
	var cols []string
	depth, start := 0, open+1
	body := sql[:closeAt]
	for i := open + 1; i <= len(body); i++ {
		if i < len(body) {
			switch body[i] {
			case '(':
				depth++
				continue
			case ')':
				depth--
				continue
			case ',':
				if depth != 0 {
					continue
				}
			default:
				continue
			}
		}
		def := strings.TrimSpace(body[start:i])
		start = i + 1
		name := firstWord(def)
		switch strings.ToUpper(name) {
		case "", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "CONSTRAINT":
			continue
		}
		cols = append(cols, name)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("no columns in %q", sql)
	}
	return cols, nil
}

// firstWord returns the first identifier of s, unquoted ("x", [x], `x` or x).
func firstWord(s string) string {
	if s == "" {
		return ""
	}
	if end, ok := map[byte]byte{'"': '"', '[': ']', '`': '`'}[s[0]]; ok {
		if j := strings.IndexByte(s[1:], end); j >= 0 {
			return s[1 : 1+j]
		}
		return s[1:]
	}
	if j := strings.IndexAny(s, " \t\r\n"); j >= 0 {
		return s[:j]
	}
	return s
}
