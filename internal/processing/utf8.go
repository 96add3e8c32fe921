package processing

import "unicode/utf8"

// The Kinesis Agent turns a record into a Java String with new String(bytes, UTF_8) before
// any converter looks at it, so malformed bytes become U+FFFD and the converted record
// carries EF BF BD in their place. appendJavaUTF8 does the same replacement, with Java's
// idea of how many bytes one U+FFFD covers (the Unicode "maximal subpart" rule, except that
// Java takes ED A0..BF, the start of an encoded surrogate, as a prefix and a whole encoded
// surrogate as one malformed sequence).

const replacementChar = "\uFFFD"

// decodeRecord returns record if it is valid UTF-8 (the common case, no copy), else its
// Java decoding appended to scratch.
func decodeRecord(scratch, record []byte) []byte {
	if utf8.Valid(record) {
		return record
	}
	return appendJavaUTF8(scratch[:0], record)
}

func isContinuation(b byte) bool { return b&0xC0 == 0x80 }

func appendJavaUTF8(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		b := s[i]
		if b < 0x80 {
			dst = append(dst, b)
			i++
			continue
		}
		if r, size := utf8.DecodeRune(s[i:]); r != utf8.RuneError || size > 1 {
			dst = append(dst, s[i:i+size]...)
			i += size
			continue
		}
		i += javaMalformedLength(s[i:])
		dst = append(dst, replacementChar...)
	}
	return dst
}

// javaMalformedLength is how many bytes at the start of s (which does not begin with a
// valid sequence) Java's decoder replaces with one U+FFFD.
func javaMalformedLength(s []byte) int {
	b1 := s[0]
	switch {
	case b1 >= 0xE0 && b1 <= 0xEF:
		if len(s) < 2 || !isContinuation(s[1]) || (b1 == 0xE0 && s[1] < 0xA0) {
			return 1
		}
		if len(s) < 3 || !isContinuation(s[2]) {
			return 2
		}
		return 3 // only ED A0..BF xx, an encoded surrogate, gets here
	case b1 >= 0xF0 && b1 <= 0xF4:
		if len(s) < 2 || !isContinuation(s[1]) ||
			(b1 == 0xF0 && s[1] < 0x90) || (b1 == 0xF4 && s[1] > 0x8F) {
			return 1
		}
		if len(s) < 3 || !isContinuation(s[2]) {
			return 2
		}
		return 3
	}
	return 1
}
