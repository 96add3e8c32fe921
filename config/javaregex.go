package config

import (
	"fmt"
	"regexp"
)

// compileJavaRegexp compiles a pattern written for the Kinesis Agent's Java regexps with
// Go's RE2. What does not compile comes back as a message, naming the Java construct RE2
// lacks when there is one (RE2 guarantees linear time, so it has no lookaround,
// backreferences, possessive quantifiers or atomic groups).
func compileJavaRegexp(s string) (*regexp.Regexp, string) {
	re, err := regexp.Compile(s)
	if err == nil {
		return re, ""
	}
	if what := javaOnlyConstruct(s); what != "" {
		return nil, what + " is Java regexp syntax that Go's RE2 engine does not support; rewrite the pattern without it"
	}
	return nil, errorsTrim(err)
}

// javaOnlyConstruct names the first construct of s that Java's regexps know and RE2 does
// not, or "". Escapes and character classes are skipped, where the same characters are
// literal.
func javaOnlyConstruct(s string) string {
	inClass := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		next := func(k int) byte {
			if i+k < len(s) {
				return s[i+k]
			}
			return 0
		}
		switch {
		case c == '\\':
			if n := next(1); !inClass && n >= '1' && n <= '9' {
				return fmt.Sprintf("the backreference \\%c", n)
			} else if !inClass && n == 'k' && next(2) == '<' {
				return "the named backreference \\k<...>"
			}
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			if next(1) == '^' {
				i++
			}
			if next(1) == ']' {
				i++ // a ] first in a class is literal
			}
		case c == '(' && next(1) == '?':
			switch {
			case next(2) == '=':
				return "the lookahead (?="
			case next(2) == '!':
				return "the negative lookahead (?!"
			case next(2) == '<' && next(3) == '=':
				return "the lookbehind (?<="
			case next(2) == '<' && next(3) == '!':
				return "the negative lookbehind (?<!"
			case next(2) == '>':
				return "the atomic group (?>"
			}
			i++ // the ? of the group is not a quantifier
		case (c == '*' || c == '+' || c == '?' || c == '}') && next(1) == '+':
			return fmt.Sprintf("the possessive quantifier %c+", c)
		}
	}
	return ""
}
