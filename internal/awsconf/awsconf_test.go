package awsconf

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinship-agent/kinship/config"
)

// isolate keeps the developer's own AWS setup (and the instance metadata service) out of
// the test.
func isolate(t *testing.T) {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KINESIS", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
}

func TestLoadWithoutRegionSaysWhereToSetIt(t *testing.T) {
	isolate(t)
	_, err := Load(context.Background(), config.AWS{})
	if err == nil || !strings.Contains(err.Error(), "aws.region") {
		t.Fatalf("err = %v, want one that names aws.region", err)
	}
}

func TestRegionFromConfigOrEnvironment(t *testing.T) {
	isolate(t)
	cfg, err := Load(context.Background(), config.AWS{Region: "eu-west-1"})
	if err != nil || cfg.Region != "eu-west-1" {
		t.Fatalf("region %q, err %v", cfg.Region, err)
	}
	t.Setenv("AWS_REGION", "ap-south-1")
	cfg, err = Load(context.Background(), config.AWS{})
	if err != nil || cfg.Region != "ap-south-1" {
		t.Fatalf("region %q, err %v", cfg.Region, err)
	}
}

func TestEndpointPrecedence(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", "http://127.0.0.1:1111")
	cfg, err := Load(context.Background(), config.AWS{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	// The environment's service endpoint applies when the file names none...
	c := kinesis.NewFromConfig(cfg, KinesisOptions(config.AWS{}))
	if got := aws.ToString(c.Options().BaseEndpoint); got != "http://127.0.0.1:1111" {
		t.Errorf("endpoint %q, want the environment's", got)
	}
	// ...and aws.endpoint in the file wins over it.
	c = kinesis.NewFromConfig(cfg, KinesisOptions(config.AWS{Endpoint: "http://127.0.0.1:2222"}))
	if got := aws.ToString(c.Options().BaseEndpoint); got != "http://127.0.0.1:2222" {
		t.Errorf("endpoint %q, want aws.endpoint's", got)
	}
}

func TestRoleARNAssumesRole(t *testing.T) {
	isolate(t)
	cfg, err := Load(context.Background(), config.AWS{Region: "us-east-1", RoleARN: "arn:aws:iam::123456789012:role/kinship"})
	if err != nil {
		t.Fatal(err)
	}
	cache, ok := cfg.Credentials.(*aws.CredentialsCache)
	if !ok || !cache.IsCredentialsProvider(&stscreds.AssumeRoleProvider{}) {
		t.Fatalf("credentials are %T, want a cache around the assume-role provider", cfg.Credentials)
	}
	plain, err := Load(context.Background(), config.AWS{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := plain.Credentials.(*aws.CredentialsCache); ok && c.IsCredentialsProvider(&stscreds.AssumeRoleProvider{}) {
		t.Fatal("assume-role provider without aws.role_arn")
	}
}
