package kinesisapi

import (
	"encoding/base64"
	"fmt"
	"hash"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Protocol is the wire format of PutRecords requests and responses.
type Protocol int

const (
	// CBOR is application/x-amz-cbor-1.1: records travel as CBOR byte strings, no base64.
	CBOR Protocol = iota
	// JSON is application/x-amz-json-1.1, what the AWS SDK for Go sends.
	JSON
)

// ParseProtocol reads the kinesis.protocol configuration value; "" is CBOR, the default.
func ParseProtocol(s string) (Protocol, error) {
	switch s {
	case "", "cbor":
		return CBOR, nil
	case "json":
		return JSON, nil
	}
	return 0, fmt.Errorf("kinesisapi: unknown protocol %q (want cbor or json)", s)
}

func (p Protocol) String() string {
	if p == JSON {
		return "json"
	}
	return "cbor"
}

func (p Protocol) contentType() string {
	if p == JSON {
		return "application/x-amz-json-1.1"
	}
	return "application/x-amz-cbor-1.1"
}

// hashChunk is how many encoded bytes the JSON encoder writes before handing them to the
// hash, so that they are hashed while still in cache rather than in a second pass over a
// body of several MiB.
const hashChunk = 64 << 10

// validKey returns s (a partition key or a stream) with every byte that is not part of valid UTF-8 replaced by U+FFFD, as
// encoding/json (and so the SDK) does: the service only takes Unicode keys, and both
// protocols must send the same key, which the shard a record lands on depends on.
func validKey(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func checkInput(in *kinesis.PutRecordsInput) error {
	if in.StreamName == nil && in.StreamARN == nil {
		return fmt.Errorf("kinesisapi: PutRecords needs StreamName or StreamARN")
	}
	for i := range in.Records {
		if in.Records[i].PartitionKey == nil {
			return fmt.Errorf("kinesisapi: PutRecords record %d has no PartitionKey", i)
		}
	}
	return nil
}

// streamField is the member naming the stream and its value.
func streamField(in *kinesis.PutRecordsInput) (string, string) {
	if in.StreamARN != nil {
		return "StreamARN", validKey(*in.StreamARN)
	}
	return "StreamName", validKey(*in.StreamName)
}

// ---- JSON ----

// jsonPlain reports whether s needs no escaping inside a JSON string.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// jsonStringLen bounds the encoded length of s (quotes included): exact when s needs no
// escaping, 6 bytes per byte otherwise (\u00XX), which a partition key of at most 256
// characters can afford.
func jsonStringLen(s string) int {
	if jsonPlain(s) {
		return len(s) + 2
	}
	return 6*len(s) + 2
}

const hexDigits = "0123456789abcdef"

func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	if jsonPlain(s) {
		return append(append(dst, s...), '"')
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// JSON framing, in the order written.
const (
	jsonOpen      = `{"Records":[`
	jsonData      = `{"Data":"`
	jsonKey       = `","PartitionKey":`
	jsonHashKey   = `,"ExplicitHashKey":`
	jsonEntryEnd  = `}`
	jsonRecsClose = `],"`
	jsonStreamSep = `":`
	jsonClose     = `}`
)

// jsonSize bounds the encoded body of in (exact unless a key needs escaping).
func jsonSize(in *kinesis.PutRecordsInput) int {
	field, stream := streamField(in)
	n := len(jsonOpen) + len(jsonRecsClose) + len(field) + len(jsonStreamSep) + jsonStringLen(stream) + len(jsonClose)
	for i := range in.Records {
		e := &in.Records[i]
		if i > 0 {
			n++ // ,
		}
		n += len(jsonData) + base64.StdEncoding.EncodedLen(len(e.Data)) + len(jsonKey) + jsonStringLen(validKey(*e.PartitionKey)) + len(jsonEntryEnd)
		if e.ExplicitHashKey != nil {
			n += len(jsonHashKey) + jsonStringLen(*e.ExplicitHashKey)
		}
	}
	return n
}

// appendJSON appends the JSON body of in to dst and writes it to h.
func appendJSON(dst []byte, in *kinesis.PutRecordsInput, h hash.Hash) []byte {
	hashed := len(dst)
	dst = append(dst, jsonOpen...)
	for i := range in.Records {
		e := &in.Records[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, jsonData...)
		dst = base64.StdEncoding.AppendEncode(dst, e.Data)
		dst = append(dst, jsonKey...)
		dst = appendJSONString(dst, validKey(*e.PartitionKey))
		if e.ExplicitHashKey != nil {
			dst = append(dst, jsonHashKey...)
			dst = appendJSONString(dst, *e.ExplicitHashKey)
		}
		dst = append(dst, jsonEntryEnd...)
		if len(dst)-hashed >= hashChunk {
			h.Write(dst[hashed:])
			hashed = len(dst)
		}
	}
	field, stream := streamField(in)
	dst = append(dst, jsonRecsClose...)
	dst = append(dst, field...)
	dst = append(dst, jsonStreamSep...)
	dst = appendJSONString(dst, stream)
	dst = append(dst, jsonClose...)
	h.Write(dst[hashed:])
	return dst
}

// ---- CBOR ----
//
// The encoder is written out here rather than taken from a library (smithy-go's
// encoding/cbor, already a dependency, or fxamacker/cbor): both encode a value tree into one
// new byte slice, which would copy every record into an intermediate value and again into the
// output, where this encoder copies no record at all (the body is a list of segments pointing
// at the caller's data, see request). Five item kinds are needed: maps, arrays, byte strings,
// text strings, and their length heads (RFC 8949 section 3). Responses are decoded by the
// SDK's own CBOR decoder.

const (
	cborBytes = 2 << 5
	cborText  = 3 << 5
	cborArray = 4 << 5
	cborMap   = 5 << 5
)

func cborHeadLen(n uint64) int {
	switch {
	case n < 24:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	}
	return 9
}

func appendCBORHead(dst []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(dst, major|byte(n))
	case n <= 0xff:
		return append(dst, major|24, byte(n))
	case n <= 0xffff:
		return append(dst, major|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(dst, major|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, major|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func cborTextLen(s string) int { return cborHeadLen(uint64(len(s))) + len(s) }

func appendCBORText(dst []byte, s string) []byte {
	return append(appendCBORHead(dst, cborText, uint64(len(s))), s...)
}

// cborFramingSize is the number of bytes of in's CBOR body that are not record data.
func cborFramingSize(in *kinesis.PutRecordsInput) int {
	field, stream := streamField(in)
	n := 1 + cborTextLen("Records") + cborHeadLen(uint64(len(in.Records))) + cborTextLen(field) + cborTextLen(stream)
	for i := range in.Records {
		e := &in.Records[i]
		n += 1 + cborTextLen("Data") + cborHeadLen(uint64(len(e.Data))) + cborTextLen("PartitionKey") + cborTextLen(validKey(*e.PartitionKey))
		if e.ExplicitHashKey != nil {
			n += cborTextLen("ExplicitHashKey") + cborTextLen(*e.ExplicitHashKey)
		}
	}
	return n
}

// encodeCBOR writes in's CBOR body as segments: framing bytes appended to frame (which must
// have room for cborFramingSize, or earlier segments would point at a stale copy: still
// correct, but no longer pooled memory) and each record's data as it is. Every segment goes
// to h in order. It returns the grown frame, the segments and the body's length.
func encodeCBOR(frame []byte, segs [][]byte, in *kinesis.PutRecordsInput, h hash.Hash) ([]byte, [][]byte, int) {
	size := 0
	mark := len(frame)
	flush := func() { // closes the framing run written since mark
		if len(frame) > mark {
			seg := frame[mark:len(frame):len(frame)]
			segs = append(segs, seg)
			h.Write(seg)
			size += len(seg)
			mark = len(frame)
		}
	}
	frame = appendCBORHead(frame, cborMap, 2)
	frame = appendCBORText(frame, "Records")
	frame = appendCBORHead(frame, cborArray, uint64(len(in.Records)))
	for i := range in.Records {
		e := &in.Records[i]
		fields := uint64(2)
		if e.ExplicitHashKey != nil {
			fields = 3
		}
		frame = appendCBORHead(frame, cborMap, fields)
		frame = appendCBORText(frame, "Data")
		frame = appendCBORHead(frame, cborBytes, uint64(len(e.Data)))
		if len(e.Data) > 0 {
			flush()
			segs = append(segs, e.Data)
			h.Write(e.Data)
			size += len(e.Data)
		}
		frame = appendCBORText(frame, "PartitionKey")
		frame = appendCBORText(frame, validKey(*e.PartitionKey))
		if e.ExplicitHashKey != nil {
			frame = appendCBORText(frame, "ExplicitHashKey")
			frame = appendCBORText(frame, *e.ExplicitHashKey)
		}
	}
	field, stream := streamField(in)
	frame = appendCBORText(frame, field)
	frame = appendCBORText(frame, stream)
	flush()
	return frame, segs, size
}
