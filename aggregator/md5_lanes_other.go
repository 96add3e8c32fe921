//go:build !amd64 || !gc || noasm || appengine

package aggregator

// cpuMD5Lanes: md5-simd has no multi-lane code here; it would be crypto/md5 behind a
// server goroutine, so the aggregator uses crypto/md5 itself.
func cpuMD5Lanes() int { return 1 }
