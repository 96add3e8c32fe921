package flow

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// An envelope is the payload of one spool frame: one destination record plus the file
// positions it makes durable. Keeping both in one frame means one fsync commits the data and
// the positions together, so a position can never be durable without its lines.
//
//	version    byte (1)
//	userRecs   uvarint
//	pk         uvarint length + bytes
//	ehk        uvarint length + bytes
//	marks      uvarint count, then per mark:
//	             dev, ino, fpLen uvarint; fpSum 8 bytes little endian; offset uvarint;
//	             path uvarint length + bytes
//	data       the rest of the payload
type envelope struct {
	PartitionKey    string
	ExplicitHashKey string
	UserRecords     int
	Marks           []position
	Data            []byte
}

const envelopeVersion = 1

// Bounds that a valid envelope never exceeds; checked before allocating so a corrupt
// frame cannot make the decoder allocate wildly.
const (
	maxKeyLen   = 1 << 10
	maxPathLen  = 1 << 16
	maxMarks    = 1 << 20
	maxUserRecs = 1 << 32
)

var errEnvelope = errors.New("flow: malformed spool envelope")

func appendEnvelope(dst []byte, e *envelope) []byte {
	return append(appendEnvelopeHeader(dst, e), e.Data...)
}

// appendEnvelopeHeader appends everything of e's encoding before its data: a frame is the
// header followed by the data, so a header written just in front of the data where it lies
// makes the frame without copying the data.
func appendEnvelopeHeader(dst []byte, e *envelope) []byte {
	dst = append(dst, envelopeVersion)
	dst = binary.AppendUvarint(dst, uint64(e.UserRecords))
	dst = appendString(dst, e.PartitionKey)
	dst = appendString(dst, e.ExplicitHashKey)
	dst = binary.AppendUvarint(dst, uint64(len(e.Marks)))
	for _, m := range e.Marks {
		dst = binary.AppendUvarint(dst, m.ID.Dev)
		dst = binary.AppendUvarint(dst, m.ID.Ino)
		dst = binary.AppendUvarint(dst, uint64(m.Fingerprint.Len))
		dst = binary.LittleEndian.AppendUint64(dst, m.Fingerprint.Sum)
		dst = binary.AppendUvarint(dst, uint64(m.Offset))
		dst = appendString(dst, m.Path)
	}
	return dst
}

// envelopeSize is an upper bound of the encoded size of e.
func envelopeSize(e *envelope) int {
	n := 1 + 3*binary.MaxVarintLen64 + len(e.PartitionKey) + len(e.ExplicitHashKey) + len(e.Data)
	for _, m := range e.Marks {
		n += 5*binary.MaxVarintLen64 + 8 + len(m.Path)
	}
	return n
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decodeEnvelope parses p. Data aliases p; the marks are only decoded when withMarks is set
// (the shipper does not need them).
func decodeEnvelope(p []byte, withMarks bool) (envelope, error) {
	var e envelope
	d := decoder{buf: p}
	if v := d.byte(); d.err == nil && v != envelopeVersion {
		return e, fmt.Errorf("%w: version %d, this agent reads %d", errEnvelope, v, envelopeVersion)
	}
	e.UserRecords = int(d.uvarint(maxUserRecs))
	e.PartitionKey = d.string(maxKeyLen)
	e.ExplicitHashKey = d.string(maxKeyLen)
	n := d.uvarint(maxMarks)
	if d.err == nil && n > uint64(len(d.buf)) {
		d.fail("mark count")
	}
	if withMarks && d.err == nil {
		e.Marks = make([]position, 0, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		var m position
		m.ID.Dev = d.uvarint(1<<64 - 1)
		m.ID.Ino = d.uvarint(1<<64 - 1)
		m.Fingerprint.Len = uint32(d.uvarint(1 << 31))
		m.Fingerprint.Sum = d.uint64()
		m.Offset = int64(d.uvarint(1<<63 - 1))
		m.Path = d.string(maxPathLen)
		if withMarks {
			e.Marks = append(e.Marks, m)
		}
	}
	if d.err != nil {
		return envelope{}, d.err
	}
	e.Data = d.buf
	return e, nil
}

// envelopeStub is the spool's Options.Stub: what stays on disk of a frame the destination
// acknowledged before the spool wrote it (spool.write: backlog). It is the envelope without
// its data: the marks, which restore replays like any frame's, so that the positions the
// record made durable at the destination survive a crash. A payload that is not an envelope
// keeps nothing.
func envelopeStub(p []byte) []byte {
	e, err := decodeEnvelope(p, false)
	if err != nil {
		return nil
	}
	return append([]byte(nil), p[:len(p)-len(e.Data)]...)
}

type decoder struct {
	buf []byte
	off int
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d", errEnvelope, what, d.off)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.buf) < 1 {
		d.fail("version")
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	d.off++
	return b
}

func (d *decoder) uvarint(max uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 || v > max {
		d.fail("varint")
		return 0
	}
	d.buf = d.buf[n:]
	d.off += n
	return v
}

func (d *decoder) uint64() uint64 {
	if d.err != nil || len(d.buf) < 8 {
		d.fail("fixed64")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.buf)
	d.buf = d.buf[8:]
	d.off += 8
	return v
}

func (d *decoder) string(max int) string {
	n := d.uvarint(uint64(max))
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.buf)) {
		d.fail("string length")
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	d.off += int(n)
	return s
}
