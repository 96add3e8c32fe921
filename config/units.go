package config

import (
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Size is a number of bytes. In YAML it is an integer (bytes) or a string with a unit:
// B, KiB, MiB, GiB, TiB (binary) or KB, MB, GB, TB (decimal); "1.5MiB" is allowed as long
// as it comes to a whole number of bytes.
type Size int64

// Common sizes, handy for defaults and tests.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
	TiB Size = 1 << 40
)

// sizeUnits is matched case-insensitively, so "mb" and "MB" both mean 10^6: operators
// rarely care about the case, but they do care that MiB and MB differ.
var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kb":  1e3,
	"mb":  1e6,
	"gb":  1e9,
	"tb":  1e12,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
}

const sizeHint = "not a size (use e.g. 512MiB)"

// ParseSize parses a size such as "512KiB", "1.5MiB", "10MB" or "1048576".
func ParseSize(s string) (Size, error) {
	v, reason := parseSize(s)
	if reason != "" {
		return 0, fmt.Errorf("%q: %s", s, reason)
	}
	return v, nil
}

func parseSize(s string) (Size, string) {
	t := strings.TrimSpace(s)
	i := 0
	dots := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		if t[i] == '.' {
			dots++
		}
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if num == "" || num == "." || dots > 1 {
		return 0, sizeHint
	}
	mult, ok := sizeUnits[strings.ToLower(unit)]
	if !ok {
		return 0, sizeHint
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, sizeHint
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, "not a whole number of bytes"
	}
	if r.Num().BitLen() > 62 {
		return 0, "too large"
	}
	return Size(r.Num().Int64()), ""
}

// String formats the size in the largest binary unit that represents it exactly.
func (s Size) String() string {
	switch {
	case s != 0 && s%TiB == 0:
		return strconv.FormatInt(int64(s/TiB), 10) + "TiB"
	case s != 0 && s%GiB == 0:
		return strconv.FormatInt(int64(s/GiB), 10) + "GiB"
	case s != 0 && s%MiB == 0:
		return strconv.FormatInt(int64(s/MiB), 10) + "MiB"
	case s != 0 && s%KiB == 0:
		return strconv.FormatInt(int64(s/KiB), 10) + "KiB"
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// UnmarshalYAML lets other decoders (and tests) read a Size with the same rules as the config.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a size, got %s", n.Line, kindName(n))
	}
	v, reason := parseSizeNode(n)
	if reason != "" {
		return fmt.Errorf("line %d: %q: %s", n.Line, n.Value, reason)
	}
	*s = v
	return nil
}

func parseSizeNode(n *yaml.Node) (Size, string) {
	if n.Tag == "!!int" {
		// YAML ints may be written 0x10 or 1_000; strconv with base 0 follows the same rules.
		v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil {
			return 0, sizeHint
		}
		return Size(v), ""
	}
	return parseSize(n.Value)
}

// Duration is a time.Duration written as a Go duration string ("500ms", "1m30s"). A bare
// number is refused: "5" could mean seconds or milliseconds, and guessing wrong is costly.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

var bareNumber = regexp.MustCompile(`^[+-]?[0-9]*\.?[0-9]+$`)

// ParseDuration parses a Go duration string and refuses bare numbers with a hint to add a unit.
func ParseDuration(s string) (Duration, error) {
	v, reason := parseDuration(s)
	if reason != "" {
		return 0, fmt.Errorf("%q: %s", s, reason)
	}
	return v, nil
}

func parseDuration(s string) (Duration, string) {
	t := strings.TrimSpace(s)
	if bareNumber.MatchString(t) {
		return 0, fmt.Sprintf("a duration needs a unit (e.g. %ss or %sms)", t, t)
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, "not a duration (use e.g. 500ms, 10s, 1m)"
	}
	return Duration(d), ""
}

// UnmarshalYAML lets other decoders read a Duration with the same rules as the config.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a duration, got %s", n.Line, kindName(n))
	}
	v, reason := parseDuration(n.Value)
	if reason != "" {
		return fmt.Errorf("line %d: %q: %s", n.Line, n.Value, reason)
	}
	*d = v
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing (null)"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	return "nothing"
}
