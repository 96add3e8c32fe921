package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
)

// The README's first command must work: `make demo` runs scripts/demo.sh, which starts
// kinesalite, ships a sample log and reads it back.
func TestDemoScript(t *testing.T) {
	kinesalitetest.NodeDir(t) // fails with the install command when the npm peers are missing
	cmd := exec.Command("bash", "../scripts/demo.sh")
	cmd.Env = append(os.Environ(), "KINSHIP="+kinshipBin, "LINES_TO_WRITE=200", "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "203 of 203 lines arrived") || !strings.Contains(string(out), "every line arrived exactly once") {
		t.Fatalf("demo output does not show every line arriving:\n%s", out)
	}
}
