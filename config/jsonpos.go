package config

// A JSON reader that keeps the byte offset of every value and key, so that agent.json
// errors name file:line:column like the YAML ones. encoding/json's Decoder gives tokens
// and offsets; this builds the small tree the translation walks.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// maxJSONDepth bounds the nesting of an agent.json: the real format is three levels deep.
const maxJSONDepth = 64

// jnode is one JSON value with the byte offset where it starts, for line:column errors.
type jnode struct {
	kind  byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' boolean, '0' null
	off   int64
	str   string // string, number text, "true"/"false"
	keys  []jkey // object members in file order
	items []*jnode
}

type jkey struct {
	name string
	off  int64
	val  *jnode
}

// stripJSONComments blanks out // and /* */ comments (outside strings) with spaces,
// keeping newlines, so that offsets, lines and columns stay those of the file.
func stripJSONComments(data []byte) []byte {
	out := bytes.Clone(data)
	inStr, esc := false, false
	for i := 0; i < len(out); i++ {
		c := out[i]
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			for ; i < len(out) && out[i] != '\n'; i++ {
				out[i] = ' '
			}
		case c == '/' && i+1 < len(out) && out[i+1] == '*':
			out[i], out[i+1] = ' ', ' '
			for i += 2; i < len(out); i++ {
				if out[i] == '*' && i+1 < len(out) && out[i+1] == '/' {
					out[i], out[i+1] = ' ', ' '
					i++
					break
				}
				if out[i] != '\n' {
					out[i] = ' '
				}
			}
		}
	}
	return out
}

type jsonParser struct {
	data []byte
	dec  *json.Decoder
}

// jsonError is a JSON syntax problem at a byte offset.
type jsonError struct {
	off int64
	msg string
}

func (e *jsonError) Error() string { return e.msg }

// parseJSON reads one JSON value (comments already blanked) into a tree with offsets.
func parseJSON(data []byte) (*jnode, error) {
	p := &jsonParser{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	p.dec.UseNumber()
	root, err := p.value(0)
	if err != nil {
		return nil, err
	}
	at := p.start(p.dec.InputOffset())
	if _, err := p.dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &jsonError{at, "unexpected data after the top-level JSON object"}
	}
	return root, nil
}

// start skips the separators between the decoder's offset and the next token.
func (p *jsonParser) start(off int64) int64 {
	for off < int64(len(p.data)) {
		switch p.data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return off
}

func (p *jsonParser) token() (json.Token, int64, error) {
	at := p.start(p.dec.InputOffset())
	tok, err := p.dec.Token()
	if err != nil {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			return nil, at, &jsonError{se.Offset, se.Error()} // the offset of the offending byte
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, at, &jsonError{int64(len(p.data)), "unexpected end of the file (a } or ] is missing)"}
		}
		return nil, at, &jsonError{at, err.Error()}
	}
	return tok, at, nil
}

func (p *jsonParser) value(depth int) (*jnode, error) {
	tok, at, err := p.token()
	if err != nil {
		return nil, err
	}
	if depth > maxJSONDepth {
		return nil, &jsonError{at, fmt.Sprintf("nested more than %d levels deep", maxJSONDepth)}
	}
	n := &jnode{off: at}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n.kind = 'o'
			for p.dec.More() {
				ktok, kat, err := p.token()
				if err != nil {
					return nil, err
				}
				key, _ := ktok.(string) // the decoder guarantees a string key here
				v, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, jkey{name: key, off: kat, val: v})
			}
		case '[':
			n.kind = 'a'
			for p.dec.More() {
				v, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.items = append(n.items, v)
			}
		default:
			return nil, &jsonError{at, fmt.Sprintf("unexpected %q", rune(t))}
		}
		if _, _, err := p.token(); err != nil { // the closing } or ]
			return nil, err
		}
	case string:
		n.kind, n.str = 's', t
	case json.Number:
		n.kind, n.str = 'n', t.String()
	case bool:
		n.kind, n.str = 'b', strconv.FormatBool(t)
	case nil:
		n.kind = '0'
	}
	return n, nil
}

func (n *jnode) kindName() string {
	switch n.kind {
	case 'o':
		return "an object"
	case 'a':
		return "a list"
	case 's':
		return fmt.Sprintf("the string %q", n.str)
	case 'n':
		return "the number " + n.str
	case 'b':
		return n.str
	}
	return "null"
}
