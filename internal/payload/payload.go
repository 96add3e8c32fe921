// Package payload compresses whole Kinesis records (kinesis.compression) and recognises
// compressed records when reading a stream back (kinship consume).
//
// A compressed record is a gzip member (magic 1f 8b) or a zstd frame (magic 28 b5 2f fd) whose
// content is what the record would otherwise hold: a KPL aggregate or a plain line. Nothing
// else marks it: consumers tell the formats apart by their magic numbers, and a record that
// has a magic but does not decompress is taken as it is (a plain line that happens to start
// with those bytes).
package payload

import (
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// The values of kinesis.compression.
const (
	None = "none"
	Gzip = "gzip"
	Zstd = "zstd"
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Overhead bounds how much compressing n bytes can add to them (incompressible data is stored
// in raw blocks: a few bytes per block and a header). A record packed to its limit minus this
// still fits the limit once compressed.
func Overhead(n int) int { return n/1024 + 64 }

// Compressor compresses records with one algorithm. Not safe for concurrent use.
type Compressor struct {
	algo string
	zw   *zstd.Encoder
	gw   *gzip.Writer
	buf  bytes.Buffer
}

// NewCompressor returns a compressor for algo (gzip or zstd).
func NewCompressor(algo string) (*Compressor, error) {
	c := &Compressor{algo: algo}
	switch algo {
	case Gzip:
		w, err := gzip.NewWriterLevel(&c.buf, gzip.DefaultCompression)
		if err != nil {
			return nil, fmt.Errorf("payload: gzip: %w", err)
		}
		c.gw = w
	case Zstd:
		w, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true))
		if err != nil {
			return nil, fmt.Errorf("payload: zstd: %w", err)
		}
		c.zw = w
	default:
		return nil, fmt.Errorf("payload: unknown compression %q (want gzip or zstd)", algo)
	}
	return c, nil
}

// Compress appends the compressed form of src to dst[:0] and returns it.
func (c *Compressor) Compress(dst, src []byte) ([]byte, error) {
	if c.zw != nil {
		return c.zw.EncodeAll(src, dst[:0]), nil
	}
	c.buf.Reset()
	c.gw.Reset(&c.buf)
	if _, err := c.gw.Write(src); err != nil {
		return nil, fmt.Errorf("payload: gzip: %w", err)
	}
	if err := c.gw.Close(); err != nil {
		return nil, fmt.Errorf("payload: gzip: %w", err)
	}
	return append(dst[:0], c.buf.Bytes()...), nil
}

// maxDecompressed bounds what one record may expand to when read back: far more than any
// record kinship writes (10 MiB before compression), little enough to never exhaust memory.
const maxDecompressed = 256 << 20

// Decompressor reads records back. Not safe for concurrent use.
type Decompressor struct {
	zr *zstd.Decoder
	gr *gzip.Reader
}

// Decompress returns the content of a compressed record and true, or data itself and false
// when data has no compression magic or does not decompress (a plain line starting with
// those bytes).
func (d *Decompressor) Decompress(data []byte) ([]byte, bool) {
	switch {
	case bytes.HasPrefix(data, zstdMagic):
		if d.zr == nil {
			zr, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxDecompressed))
			if err != nil {
				return data, false
			}
			d.zr = zr
		}
		out, err := d.zr.DecodeAll(data, nil)
		if err != nil {
			return data, false
		}
		return out, true
	case bytes.HasPrefix(data, gzipMagic):
		var err error
		if d.gr == nil {
			d.gr, err = gzip.NewReader(bytes.NewReader(data))
		} else {
			err = d.gr.Reset(bytes.NewReader(data))
		}
		if err != nil {
			return data, false
		}
		d.gr.Multistream(false)
		out, err := io.ReadAll(io.LimitReader(d.gr, maxDecompressed+1))
		if err != nil || len(out) > maxDecompressed {
			return data, false
		}
		return out, true
	}
	return data, false
}

// Close releases the decoders.
func (d *Decompressor) Close() {
	if d.zr != nil {
		d.zr.Close()
	}
}
