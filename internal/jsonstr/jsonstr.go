// Package jsonstr writes log lines as JSON strings, for the destinations and wrappers that send
// lines inside JSON (the http destination's ndjson, add_metadata): one hand-written encoder
// instead of one per package.
package jsonstr

import "unicode/utf8"

// Append appends line as a JSON string. Lines are not always valid UTF-8: invalid
// bytes become U+FFFD (as encoding/json does) rather than failing, so one bad line cannot
// block a flow. Hand-written because json.Marshal allocates per line, which halved the
// destination's throughput.
func Append(dst, line []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(line); {
		c := line[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, line[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(line[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(append(dst, line[start:i]...), "\ufffd"...)
			i++
			start = i
			continue
		}
		i += size
	}
	return append(append(dst, line[start:]...), '"')
}
