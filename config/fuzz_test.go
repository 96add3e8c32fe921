package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, and its answer must be
// either a usable config or positioned problems, never both and never neither.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/minimal.yaml", "testdata/design-full.yaml", "example.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.yaml", data)
		if err != nil {
			if cfg != nil {
				t.Fatal("config returned along with an error")
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) == 0 {
				t.Fatalf("error %v is not a non-empty *ValidationError", err)
			}
			for _, e := range ve.Errors {
				if !strings.HasPrefix(e.Error(), "f.yaml") || strings.Contains(e.Msg, "\n") {
					t.Fatalf("malformed problem %q", e.Error())
				}
			}
			return
		}
		if cfg == nil || len(cfg.Flows) == 0 || !filepath.IsAbs(cfg.StateDir) {
			t.Fatalf("accepted an unusable config: %s", dump(cfg))
		}
		for _, fl := range cfg.Flows {
			dests := 0
			if fl.Kinesis != nil {
				dests++
				if fl.Batch.MaxBytes > fl.Kinesis.MaxRecordBytes || fl.Kinesis.MaxRequestBytes < fl.Kinesis.MaxRecordBytes {
					t.Fatalf("flow %q: inconsistent sizes accepted: %s", fl.Name, dump(fl))
				}
			}
			if fl.Discard != nil {
				dests++
			}
			if dests != 1 || fl.Name == "" || len(fl.Paths) == 0 || fl.MaxLineBytes <= 0 || fl.Batch.MaxBytes <= 0 ||
				fl.Spool.SegmentBytes <= 0 || fl.Spool.SegmentBytes > fl.Spool.MaxBytes || fl.PollInterval <= 0 ||
				(fl.Multiline != nil && fl.Multiline.Regexp == nil) {
				t.Fatalf("accepted an invalid flow: %s", dump(fl))
			}
		}
	})
}
