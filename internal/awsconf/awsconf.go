// Package awsconf builds the AWS SDK configuration the way every AWS tool does (the
// standard chain: environment, shared profiles, web identity, container and instance roles
// through IMDSv2), plus kinship's own keys: aws.region, aws.endpoint and aws.role_arn.
package awsconf

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kinship-agent/kinship/config"
)

// Load returns the SDK configuration for c. It does not contact AWS.
func Load(ctx context.Context, c config.AWS) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if c.Region != "" {
		opts = append(opts, awsconfig.WithRegion(c.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws: load configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("aws: no region: set aws.region in the configuration, AWS_REGION, or a profile's region")
	}
	if c.RoleARN != "" {
		// The cache refreshes the assumed role's credentials before they expire.
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), c.RoleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "kinship" }))
	}
	return cfg, nil
}

// KinesisOptions applies aws.endpoint to a Kinesis client. An endpoint written in the
// configuration file wins over AWS_ENDPOINT_URL_KINESIS and AWS_ENDPOINT_URL, which the SDK
// already honours when the file names none.
func KinesisOptions(c config.AWS) func(*kinesis.Options) {
	return func(o *kinesis.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	}
}

// FirehoseOptions applies aws.firehose_endpoint, else aws.endpoint, to a Firehose client, as
// KinesisOptions does for Kinesis; without it the SDK honours AWS_ENDPOINT_URL_FIREHOSE and AWS_ENDPOINT_URL.
func FirehoseOptions(c config.AWS) func(*firehose.Options) {
	return func(o *firehose.Options) {
		if c.FirehoseEndpoint != "" {
			o.BaseEndpoint = aws.String(c.FirehoseEndpoint)
		} else if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	}
}
