package processing

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The Kinesis Agent serialises with Jackson's ObjectMapper.writeValueAsString. Consumers
// parse those bytes, and some compare or hash them, so kinship writes the same bytes: keys in
// insertion order, Jackson's escape set, and for PRETTYPRINT Jackson's DefaultPrettyPrinter
// (objects one entry a line with a 2-space indent and "key" : value, arrays inline as
// [ a, b ], empty ones as { } and [ ]).

const hexUpper = "0123456789ABCDEF"

// appendJSONString appends s (valid UTF-8) as a JSON string the way Jackson escapes it:
// only '"', '\\' and the C0 controls; \b \t \n \f \r short, the others \u00XX upper-case.
// '/', '<', '>', '&', DEL, U+2028 and every other non-ASCII character go out as they are.
func appendJSONString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexUpper[c>>4], hexUpper[c&0xF])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// flatObject writes the objects CSVTOJSON, LOGTOJSON and ADDMETADATA build: a fixed list of
// keys, each value a string or null. The key parts are rendered once, at construction, so a
// record costs only its values.
//
// Jackson writes a map, so a name given twice appears once, in its first place, with the
// value of its last occurrence: slots says which field's value each written key takes.
type flatObject struct {
	prefixes [][]byte // before written key i: `{"k":` / `,"k":`, or the pretty forms
	slots    []int    // written key i takes the value of field slots[i]
	closing  []byte   // after the last value, the record's "\n" included
}

func newFlatObject(fields []string, pretty bool) flatObject {
	var o flatObject
	var keys []string
	first := map[string]int{}
	for i, f := range fields {
		if j, seen := first[f]; seen {
			o.slots[j] = i
			continue
		}
		first[f] = len(keys)
		keys = append(keys, f)
		o.slots = append(o.slots, i)
	}
	for i, k := range keys {
		var p []byte
		switch {
		case pretty && i == 0:
			p = append(p, "{\n  "...)
		case pretty:
			p = append(p, ",\n  "...)
		case i == 0:
			p = append(p, '{')
		default:
			p = append(p, ',')
		}
		p = appendJSONString(p, k)
		if pretty {
			p = append(p, " : "...)
		} else {
			p = append(p, ':')
		}
		o.prefixes = append(o.prefixes, p)
	}
	switch {
	case len(keys) == 0 && pretty:
		o.closing = []byte("{ }\n")
	case len(keys) == 0:
		o.closing = []byte("{}\n")
	case pretty:
		o.closing = []byte("\n}\n")
	default:
		o.closing = []byte("}\n")
	}
	return o
}

// jsonKind is the kind of a parsed JSON value.
type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonString
	jsonLiteral // true, false, or a number already in Jackson's output form
	jsonObject
	jsonArray
)

// jsonValue is a parsed JSON document kept the way Jackson's untyped mapping keeps it:
// objects as insertion-ordered maps (a repeated key keeps its first place and its last
// value), numbers as Integer/Long/BigInteger or Double.
type jsonValue struct {
	kind  jsonKind
	text  string // string contents (decoded) or the literal's output text
	keys  []string
	vals  []*jsonValue // object values, parallel to keys; array items
	index map[string]int
}

func newJSONObject() *jsonValue { return &jsonValue{kind: jsonObject, index: map[string]int{}} }

// put sets key like LinkedHashMap.put: replaced in place if present, appended otherwise.
func (v *jsonValue) put(key string, val *jsonValue) {
	if i, ok := v.index[key]; ok {
		v.vals[i] = val
		return
	}
	v.index[key] = len(v.keys)
	v.keys = append(v.keys, key)
	v.vals = append(v.vals, val)
}

func jsonStringValue(s string) *jsonValue { return &jsonValue{kind: jsonString, text: s} }

// appendJSONValue writes v as Jackson does, compact or with the default pretty printer;
// nesting is the pretty printer's object depth (arrays do not add to it).
func appendJSONValue(dst []byte, v *jsonValue, pretty bool, nesting int) []byte {
	switch v.kind {
	case jsonNull:
		return append(dst, "null"...)
	case jsonString:
		return appendJSONString(dst, v.text)
	case jsonLiteral:
		return append(dst, v.text...)
	case jsonArray:
		dst = append(dst, '[')
		for i, item := range v.vals {
			if i > 0 {
				dst = append(dst, ',')
			}
			if pretty {
				dst = append(dst, ' ')
			}
			dst = appendJSONValue(dst, item, pretty, nesting)
		}
		if pretty {
			dst = append(dst, ' ')
		}
		return append(dst, ']')
	}
	dst = append(dst, '{')
	for i, k := range v.keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		if pretty {
			dst = appendIndent(dst, nesting+1)
		}
		dst = appendJSONString(dst, k)
		if pretty {
			dst = append(dst, " : "...)
		} else {
			dst = append(dst, ':')
		}
		dst = appendJSONValue(dst, v.vals[i], pretty, nesting+1)
	}
	if pretty {
		if len(v.keys) > 0 {
			dst = appendIndent(dst, nesting)
		} else {
			dst = append(dst, ' ')
		}
	}
	return append(dst, '}')
}

func appendIndent(dst []byte, level int) []byte {
	dst = append(dst, '\n')
	for range level {
		dst = append(dst, ' ', ' ')
	}
	return dst
}

// Jackson 2.17's StreamReadConstraints, which the Kinesis Agent runs with: deeper nesting or
// a longer number is a parse error there. The depth limit also bounds recursion here.
const (
	maxJSONDepth        = 1000
	maxJSONNumberLength = 1000
)

var errNotJSONObject = errors.New("not a JSON object")

// parseJSONObject reads the first JSON value of s, which must be an object, the way
// ObjectMapper.readValue(s, LinkedHashMap) does with default features: strict JSON, and
// whatever follows the first value is not looked at.
func parseJSONObject(s []byte) (*jsonValue, error) {
	p := jsonParser{s: s}
	p.skipSpace()
	if p.pos >= len(p.s) {
		return nil, errors.New("no content")
	}
	if p.s[p.pos] != '{' {
		return nil, errNotJSONObject
	}
	return p.value(0)
}

// parseJSONValue reads one complete JSON value (the ADDMETADATA metadata from the
// configuration), allowing nothing after it but whitespace. Comments are allowed, as the
// Kinesis Agent's configuration reader allows them (Jackson's ALLOW_COMMENTS).
func parseJSONValue(s []byte) (*jsonValue, error) {
	p := jsonParser{s: s, comments: true}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.s) {
		return nil, fmt.Errorf("unexpected %q after the value at offset %d", p.s[p.pos], p.pos)
	}
	return v, nil
}

type jsonParser struct {
	s        []byte
	pos      int
	comments bool // /* */ and // comments count as whitespace
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		case '/':
			if !p.comments || p.pos+1 >= len(p.s) {
				return
			}
			switch p.s[p.pos+1] {
			case '/':
				end := bytes.IndexByte(p.s[p.pos:], '\n')
				if end < 0 {
					p.pos = len(p.s)
					return
				}
				p.pos += end + 1
			case '*':
				end := bytes.Index(p.s[p.pos+2:], []byte("*/"))
				if end < 0 {
					return // left for the value parser to report
				}
				p.pos += end + 4
			default:
				return
			}
		default:
			return
		}
	}
}

func (p *jsonParser) fail(what string) error {
	if p.pos >= len(p.s) {
		return fmt.Errorf("json: %s: unexpected end of input", what)
	}
	return fmt.Errorf("json: %s: unexpected %q at offset %d", what, p.s[p.pos], p.pos)
}

func (p *jsonParser) value(depth int) (*jsonValue, error) {
	if p.pos >= len(p.s) {
		return nil, p.fail("value")
	}
	if c := p.s[p.pos]; (c == '{' || c == '[') && depth >= maxJSONDepth {
		return nil, fmt.Errorf("json: nesting deeper than %d", maxJSONDepth)
	}
	switch c := p.s[p.pos]; {
	case c == '{':
		p.pos++
		obj := newJSONObject()
		p.skipSpace()
		if p.pos < len(p.s) && p.s[p.pos] == '}' {
			p.pos++
			return obj, nil
		}
		for {
			p.skipSpace()
			if p.pos >= len(p.s) || p.s[p.pos] != '"' {
				return nil, p.fail("object key")
			}
			key, err := p.str()
			if err != nil {
				return nil, err
			}
			p.skipSpace()
			if p.pos >= len(p.s) || p.s[p.pos] != ':' {
				return nil, p.fail("object")
			}
			p.pos++
			p.skipSpace()
			val, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			obj.put(key, val)
			p.skipSpace()
			if p.pos < len(p.s) && p.s[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.pos < len(p.s) && p.s[p.pos] == '}' {
				p.pos++
				return obj, nil
			}
			return nil, p.fail("object")
		}
	case c == '[':
		p.pos++
		arr := &jsonValue{kind: jsonArray}
		p.skipSpace()
		if p.pos < len(p.s) && p.s[p.pos] == ']' {
			p.pos++
			return arr, nil
		}
		for {
			p.skipSpace()
			item, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			arr.vals = append(arr.vals, item)
			p.skipSpace()
			if p.pos < len(p.s) && p.s[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.pos < len(p.s) && p.s[p.pos] == ']' {
				p.pos++
				return arr, nil
			}
			return nil, p.fail("array")
		}
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return jsonStringValue(s), nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if p.keyword(lit) {
				if lit == "null" {
					return &jsonValue{kind: jsonNull}, nil
				}
				return &jsonValue{kind: jsonLiteral, text: lit}, nil
			}
		}
		return nil, p.fail("value")
	}
}

// keyword matches a literal that must not run on into more letters (Jackson rejects "truex").
func (p *jsonParser) keyword(lit string) bool {
	end := p.pos + len(lit)
	if end > len(p.s) || string(p.s[p.pos:end]) != lit {
		return false
	}
	if end < len(p.s) && isJSONIdentByte(p.s[end]) {
		return false
	}
	p.pos = end
	return true
}

func isJSONIdentByte(c byte) bool {
	return c == '_' || c >= 0x80 || (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'z')
}

func (p *jsonParser) str() (string, error) {
	p.pos++ // the opening quote
	var out []byte
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == '"':
			if out == nil {
				s := string(p.s[start:p.pos])
				p.pos++
				return s, nil
			}
			out = append(out, p.s[start:p.pos]...)
			p.pos++
			return string(out), nil
		case c < 0x20:
			return "", p.fail("string (unescaped control character)")
		case c == '\\':
			out = append(out, p.s[start:p.pos]...)
			var err error
			if out, err = p.escape(out); err != nil {
				return "", err
			}
			start = p.pos
		default:
			p.pos++
		}
	}
	return "", p.fail("string")
}

// escape decodes one backslash escape. \u escapes are UTF-16 units: a pair becomes one
// character; a lone surrogate becomes '?', which is what Java's String.getBytes(UTF_8)
// writes for it.
func (p *jsonParser) escape(out []byte) ([]byte, error) {
	p.pos++ // the backslash
	if p.pos >= len(p.s) {
		return nil, p.fail("string escape")
	}
	c := p.s[p.pos]
	p.pos++
	switch c {
	case '"', '\\', '/':
		return append(out, c), nil
	case 'b':
		return append(out, '\b'), nil
	case 'f':
		return append(out, '\f'), nil
	case 'n':
		return append(out, '\n'), nil
	case 'r':
		return append(out, '\r'), nil
	case 't':
		return append(out, '\t'), nil
	case 'u':
		u, err := p.hex4()
		if err != nil {
			return nil, err
		}
		if utf16.IsSurrogate(rune(u)) {
			if u < 0xDC00 && p.pos+1 < len(p.s) && p.s[p.pos] == '\\' && p.s[p.pos+1] == 'u' {
				save := p.pos
				p.pos += 2
				lo, err := p.hex4()
				if err != nil {
					return nil, err
				}
				if lo >= 0xDC00 && lo <= 0xDFFF {
					return utf8.AppendRune(out, utf16.DecodeRune(rune(u), rune(lo))), nil
				}
				p.pos = save
			}
			return append(out, '?'), nil
		}
		return utf8.AppendRune(out, rune(u)), nil
	}
	p.pos--
	return nil, p.fail("string escape")
}

func (p *jsonParser) hex4() (uint16, error) {
	if p.pos+4 > len(p.s) {
		p.pos = len(p.s)
		return 0, p.fail("\\u escape")
	}
	u, err := strconv.ParseUint(string(p.s[p.pos:p.pos+4]), 16, 16)
	if err != nil {
		return 0, p.fail("\\u escape")
	}
	p.pos += 4
	return uint16(u), nil
}

// number reads a JSON number and renders it as Jackson writes what it read: integers keep
// their digits ("-0" is the int 0), numbers with a fraction or exponent become a Java
// double and print as Double.toString does (too large ones as the string "Infinity").
func (p *jsonParser) number() (*jsonValue, error) {
	start := p.pos
	if p.s[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	intStart := p.pos
	n := digits()
	if n == 0 {
		return nil, p.fail("number")
	}
	if n > 1 && p.s[intStart] == '0' {
		return nil, fmt.Errorf("json: number at offset %d: leading zeroes", start)
	}
	isFloat := false
	if p.pos < len(p.s) && p.s[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return nil, p.fail("number fraction")
		}
		isFloat = true
	}
	if p.pos < len(p.s) && (p.s[p.pos] == 'e' || p.s[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.s) && (p.s[p.pos] == '+' || p.s[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.fail("number exponent")
		}
		isFloat = true
	}
	if p.pos < len(p.s) && isJSONIdentByte(p.s[p.pos]) {
		return nil, p.fail("number")
	}
	if p.pos-start > maxJSONNumberLength {
		return nil, fmt.Errorf("json: number at offset %d longer than %d characters", start, maxJSONNumberLength)
	}
	text := string(p.s[start:p.pos])
	if !isFloat {
		if text == "-0" {
			text = "0"
		}
		return &jsonValue{kind: jsonLiteral, text: text}, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("json: number at offset %d: %w", start, err)
	}
	if math.IsInf(f, 0) {
		// Jackson quotes the non-finite doubles (QUOTE_NON_NUMERIC_NUMBERS is on by default).
		if f > 0 {
			return jsonStringValue("Infinity"), nil
		}
		return jsonStringValue("-Infinity"), nil
	}
	return &jsonValue{kind: jsonLiteral, text: string(appendJavaDouble(nil, f))}, nil
}

// appendJavaDouble formats a finite f as Java's Double.toString: the shortest digits that
// read back as f, plain between 10^-3 and 10^7 ("100.0", "0.001"), else computerized
// scientific notation ("1.0E7", "1.5E-4"), always with a digit after the point.
func appendJavaDouble(dst []byte, f float64) []byte {
	if f == 0 {
		if math.Signbit(f) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // d.ddde±XX
	if len(e) > 1 && e[1] == 'e' {
		// One digit is the shortest, but Java always writes two: the two-digit decimal
		// nearest to f, which differs from d.0 only among subnormals (4.9E-324).
		e = strconv.AppendFloat(buf[:0], f, 'e', 1, 64)
	}
	mant, exp := e, 0
	for i, c := range e {
		if c == 'e' {
			mant = e[:i]
			exp, _ = strconv.Atoi(string(e[i+1:]))
			break
		}
	}
	var digits [24]byte
	nd := 0
	for _, c := range mant {
		if c != '.' {
			digits[nd] = c
			nd++
		}
	}
	for nd > 1 && digits[nd-1] == '0' {
		nd--
	}
	ds := digits[:nd]
	if f >= 1e-3 && f < 1e7 {
		point := exp + 1 // digits before the decimal point
		switch {
		case point <= 0:
			dst = append(dst, '0', '.')
			for range -point {
				dst = append(dst, '0')
			}
			return append(dst, ds...)
		case point >= len(ds):
			dst = append(dst, ds...)
			for range point - len(ds) {
				dst = append(dst, '0')
			}
			return append(dst, '.', '0')
		default:
			dst = append(dst, ds[:point]...)
			dst = append(dst, '.')
			return append(dst, ds[point:]...)
		}
	}
	dst = append(dst, ds[0], '.')
	if len(ds) > 1 {
		dst = append(dst, ds[1:]...)
	} else {
		dst = append(dst, '0')
	}
	dst = append(dst, 'E')
	return strconv.AppendInt(dst, int64(exp), 10)
}
