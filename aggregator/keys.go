package aggregator

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"unicode/utf8"
)

// KeyFunc finds a line's partition key. ok is false when the line has none (not JSON, field
// missing, no match, an empty key); the aggregator then uses the fallback key. The returned
// slice may alias line.
type KeyFunc func(line []byte) (key []byte, ok bool)

// JSONFieldKey returns a KeyFunc that takes the key from a JSON object field, path being
// dotted object keys ("user.id"). A string value is the key (unescaped); a number or a
// boolean is the key as written; null, objects, arrays and anything unparsable are no key.
//
// It scans the line without building a document: lines are skipped over, not decoded,
// until the field is found, so a line costs about one pass over its bytes up to the field.
func JSONFieldKey(path string) KeyFunc {
	parts := strings.Split(path, ".")
	return func(line []byte) ([]byte, bool) {
		v, ok := jsonLookup(line, parts)
		if !ok || len(v) == 0 {
			return nil, false
		}
		switch v[0] {
		case '"':
			s, ok := jsonString(v)
			return s, ok && len(s) > 0
		case '{', '[', 'n':
			return nil, false
		}
		return v, true
	}
}

// DeterministicKey returns a KeyFunc whose key is the MD5 of the line in lower case hex (the
// Kinesis Agent's DETERMINISTIC), for keyed aggregation. Every line has one.
func DeterministicKey() KeyFunc {
	var h [2 * md5.Size]byte
	return func(line []byte) ([]byte, bool) {
		sum := md5.Sum(line)
		hex.Encode(h[:], sum[:])
		return h[:], true
	}
}

// RegexKey returns a KeyFunc whose key is re's first capture group.
func RegexKey(re *regexp.Regexp) KeyFunc {
	return func(line []byte) ([]byte, bool) {
		m := re.FindSubmatchIndex(line)
		if m == nil || len(m) < 4 || m[2] < 0 || m[3] <= m[2] {
			return nil, false
		}
		return line[m[2]:m[3]], true
	}
}

// cleanKey makes key a valid Kinesis partition key: valid UTF-8 (the SDK sends it as a JSON
// string, and Kinesis hashes what it received, so invalid bytes would route differently from
// what the shard map predicts) and at most maxPartitionKeyLen bytes, cut on a rune boundary.
func cleanKey(key []byte) string {
	if !utf8.Valid(key) {
		key = []byte(strings.ToValidUTF8(string(key), "\uFFFD"))
	}
	if len(key) > maxPartitionKeyLen {
		n := maxPartitionKeyLen
		for n > 0 && !utf8.RuneStart(key[n]) {
			n--
		}
		key = key[:n]
	}
	return string(key)
}

// jsonLookup returns the raw bytes of the value at path in the JSON object line.
func jsonLookup(line []byte, path []string) ([]byte, bool) {
	s := jsonScanner{b: line}
	for depth, want := range path {
		s.ws()
		if !s.eat('{') {
			return nil, false
		}
		found := false
		for {
			s.ws()
			if s.eat('}') {
				return nil, false
			}
			k, ok := s.str()
			if !ok {
				return nil, false
			}
			s.ws()
			if !s.eat(':') {
				return nil, false
			}
			s.ws()
			if keyEquals(k, want) {
				found = true
				break
			}
			if !s.skipValue() {
				return nil, false
			}
			s.ws()
			if !s.eat(',') {
				return nil, false
			}
		}
		if found && depth == len(path)-1 {
			start := s.i
			if !s.skipValue() {
				return nil, false
			}
			return line[start:s.i], true
		}
	}
	return nil, false
}

// keyEquals compares a raw JSON string (quotes included) with want.
func keyEquals(raw []byte, want string) bool {
	in := raw[1 : len(raw)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return string(in) == want
	}
	s, ok := jsonString(raw)
	return ok && string(s) == want
}

// jsonString unescapes a raw JSON string; the common case (no escapes) does not copy.
func jsonString(raw []byte) ([]byte, bool) {
	in := raw[1 : len(raw)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return in, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, false
	}
	return []byte(s), true
}

type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str consumes a string and returns it raw, quotes included.
func (s *jsonScanner) str() ([]byte, bool) {
	start := s.i
	if !s.eat('"') {
		return nil, false
	}
	for s.i < len(s.b) {
		// Look for the closing quote with the fast IndexByte, then check it is not escaped.
		j := bytes.IndexByte(s.b[s.i:], '"')
		if j < 0 {
			return nil, false
		}
		s.i += j + 1
		bs := 0
		for k := s.i - 2; k > start && s.b[k] == '\\'; k-- {
			bs++
		}
		if bs%2 == 0 {
			return s.b[start:s.i], true
		}
	}
	return nil, false
}

// skipValue consumes one value of any kind without checking it closely: the key of a log
// line is worth a cheap scan, not a validation.
func (s *jsonScanner) skipValue() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		_, ok := s.str()
		return ok
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, ok := s.str(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	default:
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return s.i > start
			}
			s.i++
		}
		return s.i > start
	}
}
