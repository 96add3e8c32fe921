package flow

import (
	"unicode/utf8"

	"github.com/kinship-agent/kinship/config"
)

// Metadata is the EC2 context of this host, fetched once at start (IMDSv2) by the caller.
// Empty fields are unknown and left out of the records.
type Metadata struct {
	Host       string
	InstanceID string
	Region     string
}

// lineWrapper turns a line into {"data":"<line>","host":...,"instance_id":...,"region":...,
// "path":...}: the fields add_metadata asks for, in this order. The constant fields are
// encoded once; only the line and the path are escaped per line. Used by the tailer's
// goroutine only (it owns buf).
type lineWrapper struct {
	fixed    []byte // the encoded constant fields, each with its leading comma
	withPath bool
	buf      []byte
	path     string // the path pathJSON encodes: a file's lines come in runs
	pathJSON []byte
}

func newLineWrapper(m *config.AddMetadata, md Metadata) *lineWrapper {
	if m == nil {
		return nil
	}
	w := &lineWrapper{withPath: m.FilePath}
	field := func(on bool, name, v string) {
		if on && v != "" {
			w.fixed = append(w.fixed, `,"`+name+`":`...)
			w.fixed = appendJSONString(w.fixed, []byte(v))
		}
	}
	field(m.Hostname, "host", md.Host)
	field(m.InstanceID, "instance_id", md.InstanceID)
	field(m.Region, "region", md.Region)
	return w
}

// wrap returns the wrapped line; it is valid until the next call.
func (w *lineWrapper) wrap(line []byte, path string) []byte {
	b := append(w.buf[:0], `{"data":`...)
	b = appendJSONString(b, line)
	b = append(b, w.fixed...)
	if w.withPath {
		if path != w.path || w.pathJSON == nil {
			w.path, w.pathJSON = path, appendJSONString(append(w.pathJSON[:0], `,"path":`...), []byte(path))
		}
		b = append(b, w.pathJSON...)
	}
	b = append(b, '}')
	w.buf = b
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Log lines are not always UTF-8: invalid bytes
// become U+FFFD (as encoding/json does), so every record stays valid JSON.
func appendJSONString(b []byte, s []byte) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
