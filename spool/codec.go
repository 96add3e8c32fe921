package spool

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Compression is how data frames are stored on disk. A reader handles every codec whatever
// the spool was opened with, so changing the setting never strands old segments.
type Compression byte

// Codec numbers are stored in frame header byte 1; 0 (raw) is what segments written before
// compression existed hold.
const (
	CompressNone Compression = 0
	CompressS2   Compression = 1
	CompressZstd Compression = 2
)

// ParseCompression maps a configuration value (none, s2, zstd) to a Compression. Empty is
// none: the zero value of a configuration built in code, not read from a file.
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "none", "":
		return CompressNone, nil
	case "s2":
		return CompressS2, nil
	case "zstd":
		return CompressZstd, nil
	}
	return 0, fmt.Errorf("compression %q: must be s2, zstd or none", s)
}

func (c Compression) String() string {
	switch c {
	case CompressNone:
		return "none"
	case CompressS2:
		return "s2"
	case CompressZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", byte(c))
}

// codecs holds the zstd state of one spool, made on first use: most spools never meet a zstd
// frame, and a zstd decoder holds buffers worth keeping only when it is used. Both are safe
// for concurrent EncodeAll/DecodeAll.
type codecs struct {
	once sync.Once
	enc  *zstd.Encoder
	dec  *zstd.Decoder
	err  error
}

func (c *codecs) zstd() (*zstd.Encoder, *zstd.Decoder, error) {
	c.once.Do(func() {
		// Fastest level: it already packs log lines several times; the better levels cost
		// about twice the CPU for a few percent (see the package doc).
		c.enc, c.err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
		if c.err != nil {
			return
		}
		c.dec, c.err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(MaxPayload), zstd.WithDecoderMaxWindow(MaxPayload))
	})
	return c.enc, c.dec, c.err
}

func (c *codecs) close() {
	if c.enc != nil {
		_ = c.enc.Close()
	}
	if c.dec != nil {
		c.dec.Close()
	}
}

// compress returns p encoded with codec in *scratch's storage (grown as needed and kept for
// the next frame), or p itself and CompressNone when that would not be smaller on disk
// (incompressible data is stored raw, never grown).
func (c *codecs) compress(codec Compression, scratch *[]byte, p []byte) ([]byte, Compression) {
	n := c.maxEncodedLen(codec, len(p))
	if n < 0 {
		return p, CompressNone
	}
	if cap(*scratch) < n {
		*scratch = make([]byte, n)
	}
	return c.compressTo(codec, (*scratch)[:n], p)
}

// maxEncodedLen is the most bytes codec may take to encode n bytes; -1 when codec cannot
// encode here (unknown, too large, or zstd failed to start): the frame is stored raw.
func (c *codecs) maxEncodedLen(codec Compression, n int) int {
	switch codec {
	case CompressS2:
		return s2.MaxEncodedLen(n)
	case CompressZstd:
		enc, _, err := c.zstd()
		if err != nil {
			return -1
		}
		return enc.MaxEncodedSize(n)
	}
	return -1
}

// compressTo encodes p with codec into dst, whose length is at least maxEncodedLen, so the
// result lies in dst's storage (the append path encodes straight into its write buffer). It
// returns p itself and CompressNone when encoding would not be smaller on disk.
func (c *codecs) compressTo(codec Compression, dst, p []byte) ([]byte, Compression) {
	var z []byte
	switch codec {
	case CompressS2:
		z = s2.Encode(dst, p)
	case CompressZstd:
		enc, _, err := c.zstd()
		if err != nil {
			return p, CompressNone
		}
		z = enc.EncodeAll(p, dst[:0])
	default:
		return p, CompressNone
	}
	if frameSize(len(z)) >= frameSize(len(p)) || (len(z) > 0 && &z[0] != &dst[0]) {
		return p, CompressNone // also when a codec ever wrote elsewhere than dst
	}
	return z, codec
}

// decodedLen returns the length z decodes to, read from its own header, so that the output
// can be bounded by MaxPayload before anything is allocated for it.
func (c *codecs) decodedLen(codec Compression, z []byte) (int, error) {
	switch codec {
	case CompressS2:
		n, err := s2.DecodedLen(z)
		if err != nil {
			return 0, fmt.Errorf("s2 header: %v: %w", err, errCorrupt)
		}
		return n, nil
	case CompressZstd:
		var h zstd.Header
		if err := h.Decode(z); err != nil {
			return 0, fmt.Errorf("zstd header: %v: %w", err, errCorrupt)
		}
		if !h.HasFCS {
			return 0, fmt.Errorf("zstd frame without a content size: %w", errCorrupt)
		}
		if h.FrameContentSize > MaxPayload {
			return MaxPayload + 1, nil
		}
		return int(h.FrameContentSize), nil
	}
	return 0, fmt.Errorf("unknown codec %d: %w", codec, errCorrupt)
}

// decompress decodes z (whose decodedLen is n, already checked against MaxPayload) into out,
// which has length n. Anything but exactly n bytes is corruption.
func (c *codecs) decompress(codec Compression, out, z []byte) error {
	switch codec {
	case CompressS2:
		d, err := s2.Decode(out, z)
		if err != nil {
			return fmt.Errorf("s2: %v: %w", err, errCorrupt)
		}
		if len(d) != len(out) || (len(d) > 0 && &d[0] != &out[0]) {
			return fmt.Errorf("s2: decoded %d bytes, header said %d: %w", len(d), len(out), errCorrupt)
		}
		return nil
	case CompressZstd:
		_, dec, err := c.zstd()
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		d, err := dec.DecodeAll(z, out[:0])
		if err != nil {
			return fmt.Errorf("zstd: %v: %w", err, errCorrupt)
		}
		if len(d) != len(out) || (len(d) > 0 && &d[0] != &out[0]) {
			return fmt.Errorf("zstd: decoded %d bytes, header said %d: %w", len(d), len(out), errCorrupt)
		}
		return nil
	}
	return fmt.Errorf("unknown codec %d: %w", codec, errCorrupt)
}
