//go:build !race

package processing

const raceEnabled = false
