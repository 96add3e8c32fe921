package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// stateDirWarnings names the flows whose patterns can match files below state_dir (say
// state_dir /var/log/kinship and a pattern /var/log/**/*.json): the spool segments and the
// positions file would be shipped, and shipping them writes more of them. The tailer never
// reads below state_dir, so this is a warning that those files are skipped, not an error.
func (c *Config) stateDirWarnings() []string {
	var out []string
	for _, f := range c.Flows {
		for _, p := range f.Paths {
			if patternReaches(p, c.StateDir) {
				out = append(out, fmt.Sprintf("flow %q (%s): paths: %q can match files below state_dir %s, where kinship keeps its own spool and positions: the agent skips its own state and never ships it (move state_dir out of the watched tree, or narrow the pattern, to silence this)",
					f.Name, f.Pos, p, c.StateDir))
			}
		}
	}
	return out
}

// patternReaches reports whether the doublestar pattern can match a path strictly below
// dir: each of the pattern's elements is matched against dir's elements in turn (** taking
// any number of them), and some element must be left over once dir is used up.
func patternReaches(pattern, dir string) bool {
	dir = filepath.Clean(dir)
	if !filepath.IsAbs(pattern) || !filepath.IsAbs(dir) {
		return false
	}
	pat := splitPath(pattern)
	var parts []string
	if dir != "/" {
		parts = splitPath(dir)
	}
	return reachesBelow(pat, parts)
}

func splitPath(p string) []string {
	return strings.Split(strings.Trim(p, "/"), "/")
}

// reachesBelow works from the ends back, one answer per (pattern element, dir element)
// pair: a recursion over ** alone would take exponential time on patterns like /**/**/**/...
func reachesBelow(pat, dir []string) bool {
	// reach[i][j]: pat[i:] can match a path strictly below the rest of dir, dir[j:].
	reach := make([][]bool, len(pat)+1)
	for i := range reach {
		reach[i] = make([]bool, len(dir)+1)
		reach[i][len(dir)] = i < len(pat) // dir used up: any element left matches something below
	}
	for i := len(pat) - 1; i >= 0; i-- {
		for j := len(dir) - 1; j >= 0; j-- {
			if pat[i] == "**" {
				// ** takes no element, or dir[j] and maybe more.
				reach[i][j] = reach[i+1][j] || reach[i][j+1]
				continue
			}
			ok, err := doublestar.Match(pat[i], dir[j])
			reach[i][j] = err == nil && ok && reach[i+1][j+1]
		}
	}
	return reach[0][0]
}
