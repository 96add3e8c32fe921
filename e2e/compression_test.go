package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// kinesis.compression: every record in the stream is a gzip or zstd stream, and kinship
// consume, which decompresses and de-aggregates, prints exactly the lines written.
func TestCompressedRecordsConsumeBack(t *testing.T) {
	endpoint := kinesalitetest.Start(t)
	for _, tc := range []struct {
		algo  string
		magic []byte
	}{{"gzip", []byte{0x1f, 0x8b}}, {"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}}} {
		t.Run(tc.algo, func(t *testing.T) {
			stream := "compressed-" + tc.algo
			kinesalitetest.CreateStream(t, endpoint, stream, 2)
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
				t.Fatal(err)
			}
			cfg := writeConfig(t, dir, kinesisConfig(dir, endpoint, stream, "compression: "+tc.algo))
			w := newWriter(t, filepath.Join(dir, "logs"), 2)
			w.write(t, 20_000) // ~2.4 MB: several full 256 KiB aggregates, and a partial one
			a := startAgent(t, endpoint, "run", "--config", cfg, "--once")
			if err := a.wait(t, time.Minute); err != nil {
				t.Fatalf("kinship run --once: %v\n%s", err, a.stderr)
			}
			raw := kinesalitetest.ReadAll(t, endpoint, stream)
			size := 0
			for _, r := range raw {
				if !bytes.HasPrefix(r.Data, tc.magic) {
					t.Fatalf("a record without the %s magic: % x...", tc.algo, r.Data[:min(8, len(r.Data))])
				}
				size += len(r.Data)
			}
			t.Logf("%s: %d records, %d bytes in the stream for %d lines", tc.algo, len(raw), size, w.total())

			consume := exec.Command(kinshipBin, "consume", "--stream", stream, "--endpoint", endpoint)
			consume.Env = agentEnv(endpoint)
			var stderr bytes.Buffer
			consume.Stderr = &stderr
			out, err := consume.Output()
			if err != nil {
				t.Fatalf("kinship consume: %v\n%s", err, stderr.String())
			}
			lines := bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n"))
			if dups := w.check(t, lines); dups != 0 || len(lines) != w.total() {
				t.Errorf("consume printed %d lines (%d duplicates) for %d written", len(lines), dups, w.total())
			}
		})
	}
}
