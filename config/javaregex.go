package config

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/kinship-agent/kinship/internal/javaregex"
)

// compileJavaRegexp compiles a pattern written for the Kinesis Agent's Java regexps exactly as
// internal/processing will run it (translated by internal/javaregex; whole anchors it like
// Java's matches()), so validate accepts a pattern exactly when it runs. What does not
// compile comes back as a message naming the Java construct RE2 lacks, when there is one (RE2
// guarantees linear time, so it has no lookaround, backreferences, possessive quantifiers or
// atomic groups).
func compileJavaRegexp(s string, whole bool) (*regexp.Regexp, string) {
	re, err := javaregex.Compile(s, whole)
	if err == nil {
		return re, ""
	}
	if msg := unsupportedJava(err); msg != "" {
		return nil, msg
	}
	return nil, errorsTrim(err)
}

// compileRegexp compiles a native include/exclude pattern, an RE2 regexp; a pattern that
// only Java's engine reads gets a message naming the construct.
func compileRegexp(s string) (*regexp.Regexp, string) {
	re, err := regexp.Compile(s)
	if err == nil {
		return re, ""
	}
	if _, terr := javaregex.Translate(s); terr != nil {
		if msg := unsupportedJava(terr); msg != "" {
			return nil, msg
		}
	}
	return nil, errorsTrim(err)
}

func unsupportedJava(err error) string {
	var u *javaregex.UnsupportedError
	if !errors.As(err, &u) {
		return ""
	}
	return fmt.Sprintf("the %s at offset %d is Java regexp syntax that Go's RE2 engine does not support; rewrite the pattern without it", u.Construct, u.Offset)
}
