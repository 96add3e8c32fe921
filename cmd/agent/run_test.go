package main

import (
	"strings"
	"testing"
)

func TestValidateExitCodes(t *testing.T) {
	var out, errOut strings.Builder
	if code := runMain([]string{"validate", "--config", "testdata/good.yaml"}, &out, &errOut); code != 0 {
		t.Errorf("good config: exit %d, stderr %s", code, errOut.String())
	}
	errOut.Reset()
	if code := runMain([]string{"validate", "--config", "testdata/bad.yaml"}, &out, &errOut); code != 1 {
		t.Errorf("bad config: exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "bad.yaml:4:") {
		t.Errorf("bad config: stderr %q does not name file:line", errOut.String())
	}
	if code := runMain([]string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

func TestHelpPrintsEveryCommand(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "help"} {
		var out, errOut strings.Builder
		if code := runMain([]string{arg}, &out, &errOut); code != 0 {
			t.Errorf("%s: exit %d", arg, code)
		}
		for _, cmd := range []string{"run", "validate", "consume", "status", "version"} {
			if !strings.Contains(out.String(), "kinship "+cmd) {
				t.Errorf("%s: usage does not mention %q:\n%s", arg, cmd, out.String())
			}
		}
	}
}
