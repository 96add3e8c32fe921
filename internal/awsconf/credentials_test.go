package awsconf

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/testenv/faultproxy"
	"github.com/kinship-agent/kinship/internal/testenv/imdstest"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
	"github.com/kinship-agent/kinship/internal/testenv/ststest"
	"github.com/kinship-agent/kinship/shipper"
)

// signedPuts is a kinesalite stream behind a proxy that records which key signed each
// PutRecords, and a put function that sends one record through it with the shipper's client
// built from cfg.
func signedPuts(t *testing.T, cfg aws.Config) (*faultproxy.Proxy, func() error) {
	t.Helper()
	endpoint := kinesalitetest.Start(t)
	kinesalitetest.CreateStream(t, endpoint, "creds", 1)
	proxy := faultproxy.Start(t, endpoint, nil)
	return proxy, putter(proxy, cfg)
}

func putter(proxy *faultproxy.Proxy, cfg aws.Config) func() error {
	client := shipper.NewKinesisClient(cfg, KinesisOptions(config.AWS{Endpoint: proxy.URL}))
	n := 0
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		n++
		_, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("creds"),
			Records: []types.PutRecordsRequestEntry{{Data: fmt.Appendf(nil, "line %d", n), PartitionKey: aws.String("k")}}})
		return err
	}
}

// On EC2 without keys in the environment, the chain takes the instance role's credentials
// from IMDSv2 (token first: the loopback IMDS refuses reads without one), and the records
// are signed with them. They are cached, due for refresh RefreshWindow before they expire,
// and replaced by the rotated ones once they are due.
func TestInstanceRoleCredentialsThroughIMDSv2(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
	imds := imdstest.Start(t, "i-0123456789abcdef0", "eu-west-1")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	expires := time.Now().Add(time.Hour).Truncate(time.Second)
	imds.SetRole("kinship-instance", imdstest.RoleCredentials{AccessKeyID: "ASIAIMDSTEST0001",
		SecretAccessKey: "imds-secret", Token: "imds-token", Expiration: expires})

	// The loopback IMDS really is v2-only: a read without a token is refused.
	resp, err := http.Get(imds.URL + "/latest/meta-data/iam/security-credentials/kinship-instance")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("IMDS read without a token: %s, want 401", resp.Status)
	}
	imds.Unauthorized.Store(0)

	cfg, err := Load(context.Background(), config.AWS{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	proxy, put := signedPuts(t, cfg)
	for range 3 {
		if err := put(); err != nil {
			t.Fatalf("PutRecords with instance role credentials: %v", err)
		}
	}
	// Cached: three requests, not three IMDS round trips.
	if n := imds.CredentialReads.Load(); n != 1 {
		t.Errorf("credentials read %d times from IMDS for 3 requests, want 1 (cached)", n)
	}
	for _, e := range proxy.Events() {
		if e.AccessKeyID != "ASIAIMDSTEST0001" || e.SessionToken != "imds-token" {
			t.Errorf("request %d signed by %q with token %q, want the instance role's", e.N, e.AccessKeyID, e.SessionToken)
		}
	}
	c, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if due := expires.Add(-RefreshWindow); !c.CanExpire || c.Expires.After(due) {
		t.Errorf("cached instance credentials are due at %v, want %v (RefreshWindow before they expire)", c.Expires, due)
	}

	// Short-lived credentials (the SDK keeps those to their end rather than refresh them
	// constantly), then EC2 rotates them: the new ones sign once the old are due.
	imds.SetRole("kinship-instance", imdstest.RoleCredentials{AccessKeyID: "ASIAIMDSTEST0002",
		SecretAccessKey: "imds-secret-2", Token: "imds-token-2", Expiration: time.Now().Add(2 * time.Second)})
	cfg, err = Load(context.Background(), config.AWS{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	put = putter(proxy, cfg)
	if err := put(); err != nil {
		t.Fatalf("PutRecords with instance role credentials: %v", err)
	}
	imds.SetRole("kinship-instance", imdstest.RoleCredentials{AccessKeyID: "ASIAIMDSTEST0003",
		SecretAccessKey: "imds-secret-3", Token: "imds-token-3", Expiration: time.Now().Add(6 * time.Hour)})
	deadline := time.Now().Add(60 * time.Second)
	for !signedWith(proxy.Events(), "ASIAIMDSTEST0003") {
		if time.Now().After(deadline) {
			t.Fatalf("the rotated instance credentials were not used within 60s (%d IMDS reads)", imds.CredentialReads.Load())
		}
		if err := put(); err != nil {
			t.Fatalf("PutRecords with instance role credentials: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	tokens := map[string]string{"ASIAIMDSTEST0001": "imds-token", "ASIAIMDSTEST0002": "imds-token-2", "ASIAIMDSTEST0003": "imds-token-3"}
	for _, e := range proxy.Events() {
		if tokens[e.AccessKeyID] != e.SessionToken {
			t.Errorf("request %d signed by %q with token %q: not a key and token IMDS served together", e.N, e.AccessKeyID, e.SessionToken)
		}
	}
	if !signedWith(proxy.Events(), "ASIAIMDSTEST0002") {
		t.Error("the short-lived credentials never signed a request")
	}
	if imds.TokenPuts.Load() == 0 || imds.Unauthorized.Load() != 0 {
		t.Errorf("IMDS: %d token PUTs, %d reads without a token: want IMDSv2 only", imds.TokenPuts.Load(), imds.Unauthorized.Load())
	}
}

// aws.role_arn: STS is called with the chain's (base) credentials, the role, the external id
// and the session name; the records are signed with the assumed role's keys; and the role is
// assumed again before its credentials expire. The loopback STS issues credentials that
// expire 2 s after the refresh window begins, so the refresh comes within seconds.
func TestAssumeRoleSignsWithRoleCredentialsAndRefreshesBeforeExpiry(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIABASETEST0001")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "base-secret")
	sts := ststest.Start(t, RefreshWindow+2*time.Second)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	const role = "arn:aws:iam::123456789012:role/kinship-writer"
	cfg, err := Load(context.Background(), config.AWS{Region: "us-east-1", RoleARN: role,
		ExternalID: "fleet-7f3a", RoleSessionName: "web-01"})
	if err != nil {
		t.Fatal(err)
	}
	proxy, put := signedPuts(t, cfg)

	// Keep shipping until a second AssumeRole has happened and its key signed a request.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := put(); err != nil {
			t.Fatalf("PutRecords with the assumed role: %v", err)
		}
		calls := sts.Calls()
		if len(calls) >= 2 && signedWith(proxy.Events(), calls[1].Issued.AccessKeyID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refresh within 60s: %d AssumeRole calls", len(calls))
		}
		time.Sleep(250 * time.Millisecond)
	}

	calls := sts.Calls()
	issued := map[string]ststest.Credentials{}
	for i, c := range calls {
		if c.SignedBy != "AKIABASETEST0001" || c.RoleARN != role || c.ExternalID != "fleet-7f3a" || c.RoleSessionName != "web-01" {
			t.Errorf("AssumeRole %d: %+v, want it signed with the base key, for %s, external id and session name as configured", i, c, role)
		}
		issued[c.Issued.AccessKeyID] = c.Issued
	}
	// Refreshed before expiry: the second call came while the first credentials were valid.
	if !calls[1].At.Before(calls[0].Issued.Expiration) {
		t.Errorf("the role was assumed again at %v, after its credentials expired at %v", calls[1].At, calls[0].Issued.Expiration)
	}
	for _, e := range proxy.Events() {
		c, ok := issued[e.AccessKeyID]
		if !ok || e.SessionToken != c.SessionToken {
			t.Errorf("request %d signed by %q with token %q, want an assumed-role key with its token", e.N, e.AccessKeyID, e.SessionToken)
		}
	}
	t.Logf("%d AssumeRole calls for %d requests", len(calls), len(proxy.Events()))
}

func signedWith(events []faultproxy.Event, key string) bool {
	for _, e := range events {
		if e.AccessKeyID == key {
			return true
		}
	}
	return false
}

// Without an external id or session name the role is assumed as "kinship", with no
// ExternalId parameter (a trust policy without the condition would reject none anyway, but
// an empty one is a malformed request).
func TestAssumeRoleDefaults(t *testing.T) {
	isolate(t)
	sts := ststest.Start(t, time.Hour)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	cfg, err := Load(context.Background(), config.AWS{Region: "us-east-1", RoleARN: "arn:aws:iam::123456789012:role/x"})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	calls := sts.Calls()
	if len(calls) != 1 || calls[0].RoleSessionName != DefaultRoleSessionName || calls[0].ExternalID != "" || creds.AccessKeyID != calls[0].Issued.AccessKeyID {
		t.Errorf("calls %+v, credentials %q", calls, creds.AccessKeyID)
	}
}
