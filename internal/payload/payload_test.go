package payload

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestRoundTripAndLimit(t *testing.T) {
	rng := rand.NewChaCha8([32]byte{1})
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rng.Read(b)
		return b
	}
	for _, algo := range []string{Gzip, Zstd} {
		c, err := NewCompressor(algo)
		if err != nil {
			t.Fatal(err)
		}
		var d Decompressor
		defer d.Close()
		var buf []byte
		for _, limit := range []int{1 << 10, 1 << 20} {
			// Incompressible data packed to the limit minus Overhead still fits once compressed.
			src := random(limit - Overhead(limit))
			buf, err = c.Compress(buf, src)
			if err != nil {
				t.Fatal(err)
			}
			if len(buf) > limit {
				t.Errorf("%s: %d random bytes compressed to %d, more than the limit %d", algo, len(src), len(buf), limit)
			}
			got, ok := d.Decompress(buf)
			if !ok || !bytes.Equal(got, src) {
				t.Errorf("%s: round trip of %d random bytes failed (ok %v)", algo, len(src), ok)
			}
		}
		lines := bytes.Repeat([]byte("2026-11-27T23:50:00Z GET /index.html 200 512\n"), 20000)
		buf, err = c.Compress(buf, lines)
		if err != nil {
			t.Fatal(err)
		}
		if len(buf) > len(lines)/10 {
			t.Errorf("%s: log lines compressed only to %d of %d bytes", algo, len(buf), len(lines))
		}
		if got, ok := d.Decompress(buf); !ok || !bytes.Equal(got, lines) {
			t.Errorf("%s: round trip of log lines failed", algo)
		}
	}
}

// Records that are not compressed come back as they are, even when they start with a magic.
func TestPlainRecordsPassThrough(t *testing.T) {
	var d Decompressor
	defer d.Close()
	for _, in := range [][]byte{
		[]byte("a plain line"),
		{},
		{0x1f, 0x8b, 'n', 'o', 't', ' ', 'g', 'z', 'i', 'p'},
		{0x28, 0xb5, 0x2f, 0xfd, 'n', 'o', 't', ' ', 'z', 's', 't', 'd'},
		{0xf3, 0x89, 0x9a, 0xc2, 1, 2, 3},
	} {
		got, ok := d.Decompress(in)
		if ok || !bytes.Equal(got, in) {
			t.Errorf("Decompress(%q) = %q, %v; want it unchanged", in, got, ok)
		}
	}
}
