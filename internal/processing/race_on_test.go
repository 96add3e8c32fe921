//go:build race

package processing

// raceEnabled: the race detector makes sync.Pool drop entries at random, so the regexp
// package allocates matchers it would otherwise reuse.
const raceEnabled = true
