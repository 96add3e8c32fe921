// Package javaregex translates java.util.regex patterns (the Kinesis Agent's matchPattern and
// delimiter) into RE2 with the same meaning, or names the Java construct RE2 cannot express.
// config uses it to check a pattern at load and internal/processing to run it, so a pattern
// is accepted at validate exactly when it runs.
package javaregex

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// agent.json patterns (matchPattern, delimiter) are java.util.regex patterns. RE2 reads most
// of them, but a few constructs mean something else there, and those are rewritten so that
// a pattern matches what it matched under the Kinesis Agent:
//
//   - '.' does not match the Java line terminators \n \r \u0085 \u2028 \u2029 (only \n with
//     UNIX_LINES (?d); anything with DOTALL (?s)), so a CRLF record fails a pattern that
//     ends in .* exactly as it does in Java;
//   - \s is [ \t\n\x0B\f\r] (RE2 leaves out \x0B), \h \v \R are Java's;
//   - \uXXXX, \0oct, \cX, \e become \x{...};
//   - \p{Lower} and the other POSIX names are ASCII classes, as in Java;
//   - Java named groups (?<name>X) become (?P<name>X).
//
// Constructs RE2 has no way to express are refused with the construct named: lookahead and
// lookbehind, backreferences, possessive quantifiers, atomic groups, \G, \X, nested classes
// and class intersections, the COMMENTS (?x) and UNICODE_CHARACTER_CLASS (?U) flags.

const (
	javaLineTerminators = `\n\r\x{85}\x{2028}\x{2029}`
	javaSpace           = `\t\n\x0B\f\r `
	javaNotSpaceRanges  = `\x00-\x08\x0E-\x1F\x21-\x{10FFFF}`
	javaHSpace          = ` \t\xA0\x{1680}\x{180E}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}`
	javaVSpace          = `\n\x0B\f\r\x{85}\x{2028}\x{2029}`
)

// javaPOSIXClasses are Java's \p{Name} POSIX classes, US-ASCII only unless (?U).
var javaPOSIXClasses = map[string]string{
	"Lower":  `a-z`,
	"Upper":  `A-Z`,
	"ASCII":  `\x00-\x7F`,
	"Alpha":  `a-zA-Z`,
	"Digit":  `0-9`,
	"Alnum":  `a-zA-Z0-9`,
	"Punct":  `!-/:-@\[-` + "`" + `{-~`,
	"Graph":  `!-~`,
	"Print":  ` -~`,
	"Blank":  ` \t`,
	"Cntrl":  `\x00-\x1F\x7F`,
	"XDigit": `0-9a-fA-F`,
	"Space":  javaSpace,
}

// UnsupportedError says which Java regex construct RE2 cannot express.
type UnsupportedError struct {
	Pattern   string
	Construct string
	Offset    int
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("java regex %q: %s at offset %d is not supported (RE2 has no equivalent)", e.Pattern, e.Construct, e.Offset)
}

type javaFlags struct {
	dotAll, unixLines bool
}

// Translate rewrites a java.util.regex pattern into RE2 syntax with the same
// meaning, or returns an *UnsupportedError.
func Translate(pattern string) (string, error) {
	t := javaTranslator{src: pattern}
	if err := t.run(); err != nil {
		return "", err
	}
	return t.out.String(), nil
}

// Compile translates and compiles a Java pattern; whole makes it match the entire input,
// like Matcher.matches().
func Compile(pattern string, whole bool) (*regexp.Regexp, error) {
	re2, err := Translate(pattern)
	if err != nil {
		return nil, err
	}
	if whole {
		re2 = `\A(?:` + re2 + `)\z`
	}
	re, err := regexp.Compile(re2)
	if err != nil {
		return nil, fmt.Errorf("java regex %q: %w", pattern, err)
	}
	return re, nil
}

// Literal returns the exact bytes re matches if it matches only one string (so a split can
// use bytes.Index instead of the regex engine).
func Literal(re2 string) ([]byte, bool) {
	parsed, err := syntax.Parse(re2, syntax.Perl)
	if err != nil {
		return nil, false
	}
	parsed = parsed.Simplify()
	if parsed.Op != syntax.OpLiteral || parsed.Flags&syntax.FoldCase != 0 {
		return nil, false
	}
	return []byte(string(parsed.Rune)), true
}

type javaTranslator struct {
	src   string
	pos   int
	out   strings.Builder
	flags []javaFlags // one per open group; the last is in force
}

func (t *javaTranslator) unsupported(at int, construct string) error {
	return &UnsupportedError{Pattern: t.src, Construct: construct, Offset: at}
}

func (t *javaTranslator) cur() *javaFlags { return &t.flags[len(t.flags)-1] }

func (t *javaTranslator) run() error {
	t.flags = []javaFlags{{}}
	for t.pos < len(t.src) {
		c := t.src[t.pos]
		switch c {
		case '\\':
			if err := t.escape(false); err != nil {
				return err
			}
		case '[':
			if err := t.class(); err != nil {
				return err
			}
		case '(':
			if err := t.group(); err != nil {
				return err
			}
		case ')':
			if len(t.flags) == 1 {
				return t.unsupported(t.pos, "unmatched ')' (an error in Java too)")
			}
			t.flags = t.flags[:len(t.flags)-1]
			t.out.WriteByte(')')
			t.pos++
		case '.':
			t.pos++
			switch f := t.cur(); {
			case f.dotAll:
				t.out.WriteString(`(?s:.)`)
			case f.unixLines:
				t.out.WriteString(`[^\n]`)
			default:
				t.out.WriteString(`[^` + javaLineTerminators + `]`)
			}
		case '*', '+', '?':
			t.out.WriteByte(c)
			t.pos++
			if err := t.quantifierSuffix(); err != nil {
				return err
			}
		case '{':
			end := t.repetitionEnd(t.pos)
			if end < 0 {
				return t.unsupported(t.pos, "'{' that does not start a repetition {n,m} (an error in Java too)")
			}
			t.out.WriteString(t.src[t.pos:end])
			t.pos = end
			if err := t.quantifierSuffix(); err != nil {
				return err
			}
		default:
			_, size := utf8.DecodeRuneInString(t.src[t.pos:])
			t.out.WriteString(t.src[t.pos : t.pos+size])
			t.pos += size
		}
	}
	if len(t.flags) > 1 {
		return t.unsupported(len(t.src), "unclosed group (an error in Java too)")
	}
	return nil
}

// repetitionEnd returns the offset after a {n}, {n,} or {n,m} starting at i, or -1.
func (t *javaTranslator) repetitionEnd(i int) int {
	j := i + 1
	digits := func() int {
		n := 0
		for j < len(t.src) && t.src[j] >= '0' && t.src[j] <= '9' {
			j++
			n++
		}
		return n
	}
	if digits() == 0 {
		return -1
	}
	if j < len(t.src) && t.src[j] == ',' {
		j++
		digits()
	}
	if j < len(t.src) && t.src[j] == '}' {
		return j + 1
	}
	return -1
}

// quantifierSuffix handles what may follow a quantifier: '?' (reluctant, RE2 has it) or
// '+' (possessive, which RE2 has not).
func (t *javaTranslator) quantifierSuffix() error {
	if t.pos < len(t.src) {
		switch t.src[t.pos] {
		case '+':
			return t.unsupported(t.pos-1, fmt.Sprintf("possessive quantifier %c+", t.src[t.pos-1]))
		case '?':
			t.out.WriteByte('?')
			t.pos++
		}
	}
	return nil
}

func (t *javaTranslator) group() error {
	start := t.pos
	rest := t.src[t.pos:]
	switch {
	case strings.HasPrefix(rest, "(?="):
		return t.unsupported(start, "lookahead (?=...)")
	case strings.HasPrefix(rest, "(?!"):
		return t.unsupported(start, "negative lookahead (?!...)")
	case strings.HasPrefix(rest, "(?<="):
		return t.unsupported(start, "lookbehind (?<=...)")
	case strings.HasPrefix(rest, "(?<!"):
		return t.unsupported(start, "negative lookbehind (?<!...)")
	case strings.HasPrefix(rest, "(?>"):
		return t.unsupported(start, "atomic group (?>...)")
	case strings.HasPrefix(rest, "(?<"):
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			return t.unsupported(start, "unterminated group name")
		}
		t.out.WriteString("(?P<" + rest[3:end] + ">")
		t.pos += end + 1
		t.pushFlags()
		return nil
	case strings.HasPrefix(rest, "(?:"):
		t.out.WriteString("(?:")
		t.pos += 3
		t.pushFlags()
		return nil
	case strings.HasPrefix(rest, "(?"):
		return t.flagGroup()
	}
	t.out.WriteByte('(')
	t.pos++
	t.pushFlags()
	return nil
}

func (t *javaTranslator) pushFlags() { t.flags = append(t.flags, *t.cur()) }

// flagGroup handles (?idmsux-idmsux) and (?idmsux-idmsux:X). RE2 takes i, m and s as they
// are; d (UNIX_LINES) and s are also tracked here because they change what '.' becomes;
// u (UNICODE_CASE) is dropped, RE2's case folding being Unicode already.
func (t *javaTranslator) flagGroup() error {
	start := t.pos
	i := t.pos + 2
	var on, off strings.Builder
	f := *t.cur()
	negate := false
	for ; i < len(t.src); i++ {
		c := t.src[i]
		switch c {
		case '-':
			negate = true
			continue
		case ')', ':':
		case 'i', 'm', 's':
			if negate {
				off.WriteByte(c)
			} else {
				on.WriteByte(c)
			}
			if c == 's' {
				f.dotAll = !negate
			}
			continue
		case 'd':
			f.unixLines = !negate
			continue
		case 'u':
			continue
		case 'x':
			return t.unsupported(start, "COMMENTS flag (?x)")
		case 'U':
			return t.unsupported(start, "UNICODE_CHARACTER_CLASS flag (?U)")
		default:
			return t.unsupported(start, fmt.Sprintf("group construct (?%c", c))
		}
		break
	}
	if i >= len(t.src) {
		return t.unsupported(start, "unterminated group")
	}
	flags := on.String()
	if off.Len() > 0 {
		flags += "-" + off.String()
	}
	if t.src[i] == ')' {
		*t.cur() = f
		if flags != "" {
			t.out.WriteString("(?" + flags + ")")
		}
	} else {
		t.flags = append(t.flags, f)
		t.out.WriteString("(?" + flags + ":")
	}
	t.pos = i + 1
	return nil
}

// class copies a character class, rewriting escapes and refusing Java's nested classes
// and && intersections.
func (t *javaTranslator) class() error {
	start := t.pos
	t.out.WriteByte('[')
	t.pos++
	if t.pos < len(t.src) && t.src[t.pos] == '^' {
		t.out.WriteByte('^')
		t.pos++
	}
	first := true
	for t.pos < len(t.src) {
		c := t.src[t.pos]
		switch {
		case c == ']' && !first:
			t.out.WriteByte(']')
			t.pos++
			return nil
		case c == '[':
			return t.unsupported(t.pos, "nested character class (union)")
		case c == '&' && strings.HasPrefix(t.src[t.pos:], "&&"):
			return t.unsupported(t.pos, "character class intersection &&")
		case c == '\\':
			if err := t.escape(true); err != nil {
				return err
			}
		default:
			_, size := utf8.DecodeRuneInString(t.src[t.pos:])
			t.out.WriteString(t.src[t.pos : t.pos+size])
			t.pos += size
		}
		first = false
	}
	return t.unsupported(start, "unclosed character class")
}

// escape rewrites the escape at t.pos, inside a class or not.
func (t *javaTranslator) escape(inClass bool) error {
	start := t.pos
	if t.pos+1 >= len(t.src) {
		return t.unsupported(start, "trailing backslash")
	}
	c := t.src[t.pos+1]
	t.pos += 2
	set := func(members string, negated bool) error {
		switch {
		case !inClass && negated:
			t.out.WriteString("[^" + members + "]")
		case !inClass:
			t.out.WriteString("[" + members + "]")
		case negated:
			return t.unsupported(start, fmt.Sprintf("negated class \\%c inside a character class", c))
		default:
			t.out.WriteString(members)
		}
		return nil
	}
	switch c {
	case 't', 'n', 'r', 'f', 'a', 'd', 'D', 'w', 'W':
		t.out.WriteString(t.src[start:t.pos])
	case 'b', 'B', 'A', 'z':
		if inClass {
			return t.unsupported(start, fmt.Sprintf("\\%c inside a character class", c))
		}
		t.out.WriteString(t.src[start:t.pos])
	case 'Z':
		// Java's \Z also matches before a final line terminator; as the last thing of a
		// whole-record pattern the two are the same.
		if inClass {
			return t.unsupported(start, "\\Z inside a character class")
		}
		t.out.WriteString(`\z`)
	case 's':
		return set(javaSpace, false)
	case 'S':
		if inClass {
			t.out.WriteString(javaNotSpaceRanges)
			return nil
		}
		return set(javaSpace, true)
	case 'h', 'H':
		return set(javaHSpace, c == 'H')
	case 'v', 'V':
		return set(javaVSpace, c == 'V')
	case 'R':
		if inClass {
			return t.unsupported(start, "\\R inside a character class")
		}
		t.out.WriteString(`(?:\r\n|[` + javaVSpace + `])`)
	case 'e':
		t.out.WriteString(`\x1B`)
	case 'x':
		// \xhh and \x{h...h} read the same in RE2; copied whole so that the main loop does
		// not take the braces for a repetition.
		end := t.pos + 2
		if strings.HasPrefix(t.src[t.pos:], "{") {
			end = t.pos + strings.IndexByte(t.src[t.pos:], '}') + 1
			if end <= t.pos {
				return t.unsupported(start, "unclosed \\x{")
			}
		}
		if end > len(t.src) {
			return t.unsupported(start, "\\x without two hex digits")
		}
		t.out.WriteString(`\x` + t.src[t.pos:end])
		t.pos = end
	case 'c':
		if t.pos >= len(t.src) {
			return t.unsupported(start, "\\c without a control letter")
		}
		t.writeRune(rune(t.src[t.pos] ^ 64))
		t.pos++
	case '0':
		n, end := 0, t.pos
		for end < len(t.src) && end-t.pos < 3 && t.src[end] >= '0' && t.src[end] <= '7' {
			next := n*8 + int(t.src[end]-'0')
			if next > 0377 {
				break
			}
			n = next
			end++
		}
		if end == t.pos {
			return t.unsupported(start, "\\0 without octal digits")
		}
		t.pos = end
		t.writeRune(rune(n))
	case 'u':
		u, ok := t.hex4()
		if !ok {
			return t.unsupported(start, "\\u without four hex digits")
		}
		r := rune(u)
		if u >= 0xD800 && u < 0xDC00 && strings.HasPrefix(t.src[t.pos:], `\u`) {
			save := t.pos
			t.pos += 2
			if lo, ok := t.hex4(); ok && lo >= 0xDC00 && lo <= 0xDFFF {
				r = (r-0xD800)<<10 + rune(lo-0xDC00) + 0x10000
			} else {
				t.pos = save
			}
		}
		t.writeRune(r)
	case 'Q':
		end := strings.Index(t.src[t.pos:], `\E`)
		quoted := t.src[t.pos:]
		if end >= 0 {
			quoted = t.src[t.pos : t.pos+end]
			t.pos += end + 2
		} else {
			t.pos = len(t.src)
		}
		for _, r := range quoted {
			t.writeRune(r)
		}
	case 'E':
		// a \E without \Q: Java ignores it
	case 'p', 'P':
		return t.property(start, c == 'P', inClass)
	case 'k':
		return t.unsupported(start, "named backreference \\k<name>")
	case 'G':
		return t.unsupported(start, "end-of-previous-match anchor \\G")
	case 'X':
		return t.unsupported(start, "grapheme cluster \\X")
	case 'N':
		return t.unsupported(start, "named character \\N{...}")
	default:
		switch {
		case c >= '1' && c <= '9':
			return t.unsupported(start, fmt.Sprintf("backreference \\%c", c))
		case c < utf8.RuneSelf && (unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c))):
			return t.unsupported(start, fmt.Sprintf("escape \\%c (an error in Java too)", c))
		default:
			r, size := utf8.DecodeRuneInString(t.src[t.pos-1:])
			t.pos += size - 1
			t.writeRune(r)
		}
	}
	return nil
}

func (t *javaTranslator) hex4() (uint16, bool) {
	if t.pos+4 > len(t.src) {
		return 0, false
	}
	u, err := strconv.ParseUint(t.src[t.pos:t.pos+4], 16, 16)
	if err != nil {
		return 0, false
	}
	t.pos += 4
	return uint16(u), true
}

// writeRune writes r as a literal that means r inside or outside a class.
func (t *javaTranslator) writeRune(r rune) {
	switch {
	case r < 0x20 || r == 0x7F || r >= 0x80 && !unicode.IsPrint(r):
		fmt.Fprintf(&t.out, `\x{%X}`, r)
	case r < utf8.RuneSelf && strings.ContainsRune(`\.+*?()|[]{}^$-&#~ `, r):
		if r == ' ' {
			t.out.WriteByte(' ')
		} else {
			t.out.WriteByte('\\')
			t.out.WriteRune(r)
		}
	default:
		t.out.WriteRune(r)
	}
}

// property rewrites \p{Name}, \pL and their \P negations.
func (t *javaTranslator) property(start int, negated, inClass bool) error {
	var name string
	if t.pos < len(t.src) && t.src[t.pos] == '{' {
		end := strings.IndexByte(t.src[t.pos:], '}')
		if end < 0 {
			return t.unsupported(start, "unclosed \\p{")
		}
		name = t.src[t.pos+1 : t.pos+end]
		t.pos += end + 1
	} else if t.pos < len(t.src) {
		name = t.src[t.pos : t.pos+1]
		t.pos++
	}
	if members, ok := javaPOSIXClasses[name]; ok {
		if !inClass {
			if negated {
				t.out.WriteString("[^" + members + "]")
			} else {
				t.out.WriteString("[" + members + "]")
			}
			return nil
		}
		if negated {
			return t.unsupported(start, `\P{`+name+`} inside a character class`)
		}
		t.out.WriteString(members)
		return nil
	}
	re2Name := strings.TrimPrefix(name, "Is")
	re2Name = strings.TrimPrefix(re2Name, "general_category=")
	re2Name = strings.TrimPrefix(re2Name, "gc=")
	re2Name = strings.TrimPrefix(re2Name, "script=")
	re2Name = strings.TrimPrefix(re2Name, "sc=")
	_, isCategory := unicode.Categories[re2Name]
	_, isScript := unicode.Scripts[re2Name]
	if !isCategory && !isScript {
		return t.unsupported(start, `Unicode property \p{`+name+`}`)
	}
	if negated {
		t.out.WriteString(`\P{` + re2Name + `}`)
	} else {
		t.out.WriteString(`\p{` + re2Name + `}`)
	}
	return nil
}
