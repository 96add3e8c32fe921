package main

import (
	"bytes"
	"strings"
	"testing"
)

// validate accepts the Kinesis Agent's agent.json and prints what kinship ignores.
func TestValidateAgentJSONPrintsWarnings(t *testing.T) {
	var out, errOut bytes.Buffer
	path := "../../config/testdata/agentjson/streams-real-world.json"
	if code := runMain([]string{"validate", "--config", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "ok (1 flows)") ||
		!strings.Contains(errOut.String(), path+": warning: awsAccessKeyId, awsSecretAccessKey: not supported") ||
		strings.Contains(errOut.String(), "EXAMPLE") {
		t.Errorf("stdout %q\nstderr %q", out.String(), errOut.String())
	}
}
