// Package awsconf builds the AWS SDK configuration the way every AWS tool does (the
// standard chain: environment, shared profiles, web identity, container and instance roles
// through IMDSv2), plus kinship's own keys: aws.region, aws.endpoint and aws.role_arn (with
// aws.external_id and aws.role_session_name).
package awsconf

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kinship-agent/kinship/config"
)

// RefreshWindow is how long before they expire temporary credentials are replaced. The
// SDK's cache would otherwise use them to the last second, so a request signed just before
// expiry could reach the service after it and fail as a configuration error; STS hands out
// at least 15 minutes, so 5 minutes early costs one AssumeRole call per 10 minutes.
const RefreshWindow = 5 * time.Minute

// DefaultRoleSessionName names kinship's sessions in CloudTrail when aws.role_session_name
// is not set.
const DefaultRoleSessionName = "kinship"

// Load returns the SDK configuration for c. It does not contact AWS.
func Load(ctx context.Context, c config.AWS) (aws.Config, error) {
	// Every refreshable credential of the chain (instance role, SSO, credential process...)
	// is replaced RefreshWindow before it expires, as the SDK already does for container
	// credentials, rather than used to its last second.
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithCredentialsCacheOptions(func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = RefreshWindow
	})}
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
		// STS is called with the chain's credentials (cfg.Credentials, captured here), and the
		// cache refreshes the assumed role's credentials RefreshWindow before they expire.
		name := c.RoleSessionName
		if name == "" {
			name = DefaultRoleSessionName
		}
		provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), c.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = name
			if c.ExternalID != "" {
				o.ExternalID = aws.String(c.ExternalID)
			}
		})
		cfg.Credentials = aws.NewCredentialsCache(provider, func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = RefreshWindow
		})
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

// FirehoseOptions applies aws.endpoint to a Firehose client, as KinesisOptions does for
// Kinesis; without it the SDK honours AWS_ENDPOINT_URL_FIREHOSE and AWS_ENDPOINT_URL.
func FirehoseOptions(c config.AWS) func(*firehose.Options) {
	return func(o *firehose.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	}
}
