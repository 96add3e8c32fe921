package testenv_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoProductionImports fails when the agent's binary links a test helper: `go list -deps`
// without test files must not name any package below internal/testenv.
func TestNoProductionImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/kinship-agent/kinship/cmd/agent").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	var seen int
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/kinship-agent/kinship/") {
			seen++
		}
		if strings.Contains(pkg, "/internal/testenv") {
			t.Errorf("the agent links test helper %s", pkg)
		}
	}
	if seen < 5 {
		t.Fatalf("go list named only %d of the project's packages; the check would prove nothing:\n%s", seen, out)
	}
}
