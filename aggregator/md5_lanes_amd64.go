//go:build amd64 && gc && !noasm && !appengine

package aggregator

import "github.com/klauspost/cpuid/v2"

// cpuMD5Lanes is how many messages md5-simd hashes at once on this CPU. The build
// constraint and the feature checks are md5-simd's own (it falls back to crypto/md5
// without AVX2, and uses AVX-512 with AVX512F and AVX512DQ), so that the aggregator only
// batches aggregates where lanes exist.
func cpuMD5Lanes() int {
	switch {
	case cpuid.CPU.Supports(cpuid.AVX512F, cpuid.AVX512DQ):
		return 16
	case cpuid.CPU.Supports(cpuid.AVX2):
		return 8
	}
	return 1
}
