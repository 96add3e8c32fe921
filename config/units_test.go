package config

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Size
		err  string
	}{
		{in: "0", want: 0},
		{in: "1048576", want: MiB},
		{in: "10B", want: 10},
		{in: "512KiB", want: 512 * KiB},
		{in: "1MiB", want: MiB},
		{in: "1GiB", want: GiB},
		{in: "2TiB", want: 2 * TiB},
		{in: "1.5MiB", want: MiB + MiB/2},
		{in: ".5KiB", want: 512},
		{in: "1KB", want: 1000},
		{in: "10MB", want: 10_000_000},
		{in: "1GB", want: 1_000_000_000},
		{in: "1.5GB", want: 1_500_000_000},
		{in: "64mib", want: 64 * MiB},
		{in: " 512 MiB ", want: 512 * MiB},
		{in: "1GB2", err: "not a size (use e.g. 512MiB)"},
		{in: "", err: "not a size"},
		{in: "MiB", err: "not a size"},
		{in: "-1MiB", err: "not a size"},
		{in: "1.2.3MiB", err: "not a size"},
		{in: "1 PiB", err: "not a size"},
		{in: "1.5B", err: "not a whole number of bytes"},
		{in: "0.1KiB", err: "not a whole number of bytes"},
		{in: "9999999TiB", err: "too large"},
		{in: "99999999999999999999", err: "too large"},
	} {
		got, err := ParseSize(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSize(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestSizeString(t *testing.T) {
	for in, want := range map[Size]string{0: "0B", 1: "1B", 1000: "1000B", KiB: "1KiB", 1536 * KiB: "1536KiB", MiB: "1MiB", 64 * MiB: "64MiB", GiB: "1GiB", TiB: "1TiB"} {
		if got := in.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(in), got, want)
		}
		if back, err := ParseSize(want); err != nil || back != in {
			t.Errorf("ParseSize(%q) = %v, %v; want round trip to %d", want, back, err, int64(in))
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "1s", want: time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "2h", want: 2 * time.Hour},
		{in: "0s", want: 0},
		{in: "5", err: "a duration needs a unit (e.g. 5s or 5ms)"},
		{in: "0.5", err: "needs a unit"},
		{in: "100", err: "needs a unit"},
		{in: "soon", err: "not a duration (use e.g. 500ms, 10s, 1m)"},
		{in: "1d", err: "not a duration"},
		{in: "", err: "not a duration"},
	} {
		got, err := ParseDuration(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got.D() != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// Other decoders (the agent.json translation, tests of other packages) read the same units.
func TestUnmarshalYAMLUnits(t *testing.T) {
	var v struct {
		S Size     `yaml:"s"`
		N Size     `yaml:"n"`
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("s: 1.5KiB\nn: 4096\nd: 250ms\n"), &v); err != nil {
		t.Fatal(err)
	}
	if v.S != 1536 || v.N != 4096 || v.D.D() != 250*time.Millisecond {
		t.Fatalf("got %+v", v)
	}
	if err := yaml.Unmarshal([]byte("d: 3\n"), &v); err == nil || !strings.Contains(err.Error(), "needs a unit") {
		t.Fatalf("bare number duration: err = %v", err)
	}
	if err := yaml.Unmarshal([]byte("s: [1]\n"), &v); err == nil || !strings.Contains(err.Error(), "expected a size") {
		t.Fatalf("list as size: err = %v", err)
	}
}
