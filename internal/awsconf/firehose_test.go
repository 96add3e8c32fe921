package awsconf

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"

	"github.com/kinship-agent/kinship/config"
)

// Firehose clients find their endpoint like Kinesis clients: AWS_ENDPOINT_URL_FIREHOSE when
// the file names none, aws.endpoint when it does.
func TestFirehoseEndpointPrecedence(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_ENDPOINT_URL_FIREHOSE", "http://127.0.0.1:3333")
	cfg, err := Load(context.Background(), config.AWS{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	c := firehose.NewFromConfig(cfg, FirehoseOptions(config.AWS{}))
	if got := aws.ToString(c.Options().BaseEndpoint); got != "http://127.0.0.1:3333" {
		t.Errorf("endpoint %q, want the environment's", got)
	}
	c = firehose.NewFromConfig(cfg, FirehoseOptions(config.AWS{Endpoint: "http://127.0.0.1:4444"}))
	if got := aws.ToString(c.Options().BaseEndpoint); got != "http://127.0.0.1:4444" {
		t.Errorf("endpoint %q, want aws.endpoint's", got)
	}
	c = firehose.NewFromConfig(cfg, FirehoseOptions(config.AWS{Endpoint: "http://127.0.0.1:4444", FirehoseEndpoint: "http://127.0.0.1:5555"}))
	if got := aws.ToString(c.Options().BaseEndpoint); got != "http://127.0.0.1:5555" {
		t.Errorf("endpoint %q, want aws.firehose_endpoint's (agent.json's firehose.endpoint)", got)
	}
}
