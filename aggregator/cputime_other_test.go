//go:build !unix

package aggregator

// processCPU is not measured here: benchmarks report 0 CPU s/GB.
func processCPU() float64 { return 0 }
