package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/internal/testenv/faultproxy"
	"github.com/kinship-agent/kinship/internal/testenv/imdstest"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
	"github.com/kinship-agent/kinship/internal/testenv/ststest"
)

// credentialsRun runs `kinship run --once --log-level debug` over 2,000 lines into stream,
// through a proxy that records which key signed each PutRecords and fails a few of them twice
// in a row (the SDK retries once, so the shipper's error paths log too), with env as the
// whole environment. It returns the proxy's events and everything the agent wrote.
func credentialsRun(t *testing.T, stream, awsYAML string, env []string) ([]faultproxy.Event, string) {
	t.Helper()
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, stream, 1)
	proxy := faultproxy.Start(t, endpoint, func(n, _ int) faultproxy.Fault {
		// From the first request on: however few requests the agent makes, these happen.
		switch n {
		case 0, 1:
			return faultproxy.Fault{Kind: faultproxy.ServerError}
		case 2, 3:
			return faultproxy.Fault{Kind: faultproxy.Throttle}
		case 4, 5:
			return faultproxy.Fault{Kind: faultproxy.Reset}
		}
		return faultproxy.Fault{}
	})
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, logs, 2)
	w.write(t, 2000)
	cfg := writeConfig(t, dir, fmt.Sprintf(`state_dir: %s/state
aws:
  region: us-east-1
  endpoint: %s
%sflows:
  - name: creds
    paths: ["%s/*.log"]
    kinesis: {stream: %s, max_in_flight: 1}
    batch: {max_age: 100ms, max_bytes: 16KiB}
`, dir, proxy.URL, awsYAML, logs, stream))
	cmd := exec.Command(kinshipBin, "run", "--config", cfg, "--once", "--log-level", "debug")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}, env...)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("kinship run --once did not finish in 90s:\n%s", out)
	}
	if err != nil {
		t.Fatalf("kinship run --once: %v\n%s", err, out)
	}
	if dups := w.check(t, readStream(t, endpoint, stream).lines); dups != 0 {
		t.Errorf("%d duplicates: no fault of this schedule forwards a request", dups)
	}
	if !strings.Contains(string(out), "send failed") {
		t.Errorf("the agent logged no failed send: the secrets check covers only the happy path\n%s", out)
	}
	t.Logf("%d PutRecords requests", len(proxy.Events()))
	return proxy.Events(), string(out)
}

// noSecrets fails the test if any secret appears in the agent's output.
func noSecrets(t *testing.T, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the agent logged a secret (%d characters) at debug level:\n%s", len(s), out)
		}
	}
}

// On an EC2 instance with a role and no keys anywhere else, the agent ships with the
// instance role's credentials from IMDSv2, and logs neither the secret key nor the token.
func TestAgentUsesInstanceRoleAndLogsNoSecret(t *testing.T) {
	imds := imdstest.Start(t, "i-0feedfacecafe0002", "us-east-1")
	const secret, token = "imds-secret-key-do-not-log", "imds-session-token-do-not-log"
	imds.SetRole("kinship-instance", imdstest.RoleCredentials{AccessKeyID: "ASIAIMDSE2E00001",
		SecretAccessKey: secret, Token: token, Expiration: time.Now().Add(6 * time.Hour)})
	events, out := credentialsRun(t, "imds", "", []string{"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + imds.URL})
	for _, e := range events {
		if e.AccessKeyID != "ASIAIMDSE2E00001" || e.SessionToken != token {
			t.Errorf("PutRecords %d signed by %q: want the instance role's key and token", e.N, e.AccessKeyID)
		}
	}
	if imds.TokenPuts.Load() == 0 || imds.Unauthorized.Load() != 0 || imds.CredentialReads.Load() == 0 {
		t.Errorf("IMDS: %d token PUTs, %d reads without a token, %d credential reads: want IMDSv2",
			imds.TokenPuts.Load(), imds.Unauthorized.Load(), imds.CredentialReads.Load())
	}
	noSecrets(t, out, secret, token)
}

// With aws.role_arn the agent assumes the role through STS with the environment's keys and
// the configured external id and session name, signs every PutRecords with the role's
// credentials, and logs none of the secrets involved.
func TestAgentAssumesRoleAndLogsNoSecret(t *testing.T) {
	sts := ststest.Start(t, time.Hour)
	const role = "arn:aws:iam::123456789012:role/kinship-e2e"
	const baseSecret = "base-secret-key-do-not-log"
	events, out := credentialsRun(t, "role",
		fmt.Sprintf("  role_arn: %s\n  external_id: fleet-e2e\n  role_session_name: e2e-host\n", role),
		[]string{"AWS_ACCESS_KEY_ID=AKIABASEE2E00001", "AWS_SECRET_ACCESS_KEY=" + baseSecret,
			"AWS_EC2_METADATA_DISABLED=true", "AWS_ENDPOINT_URL_STS=" + sts.URL})
	calls := sts.Calls()
	if len(calls) == 0 {
		t.Fatal("the agent never called AssumeRole")
	}
	c := calls[0]
	if c.SignedBy != "AKIABASEE2E00001" || c.RoleARN != role || c.ExternalID != "fleet-e2e" || c.RoleSessionName != "e2e-host" {
		t.Errorf("AssumeRole %+v", c)
	}
	for _, e := range events {
		if e.AccessKeyID != c.Issued.AccessKeyID || e.SessionToken != c.Issued.SessionToken {
			t.Errorf("PutRecords %d signed by %q: want the assumed role's key %q", e.N, e.AccessKeyID, c.Issued.AccessKeyID)
		}
	}
	noSecrets(t, out, baseSecret, c.Issued.SecretAccessKey, c.Issued.SessionToken)
}
