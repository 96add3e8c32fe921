package config

import (
	"os"
	"testing"
)

// Config is read once at start and on validate, so this only guards against a walker that
// goes quadratic; the figure is per parse of the commented full example.
func BenchmarkParseExample(b *testing.B) {
	data, err := os.ReadFile("example.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("example.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
