package preflight

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	fhtypes "github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/awsconf"
	"github.com/kinship-agent/kinship/internal/flow"
)

// KinesisAPI is what check reads of a stream: only calls that change nothing.
type KinesisAPI interface {
	DescribeStreamSummary(context.Context, *kinesis.DescribeStreamSummaryInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// FirehoseAPI is what check reads of a delivery stream.
type FirehoseAPI interface {
	DescribeDeliveryStream(context.Context, *firehose.DescribeDeliveryStreamInput, ...func(*firehose.Options)) (*firehose.DescribeDeliveryStreamOutput, error)
}

// STSAPI names the identity behind the credentials.
type STSAPI interface {
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// Clients are the AWS clients of one check, built from the agent's own AWS configuration.
type Clients struct {
	Region      string
	Credentials aws.CredentialsProvider
	Kinesis     KinesisAPI
	Firehose    FirehoseAPI
	STS         STSAPI
}

// NewClients builds the clients the agent would use for cfg's aws block.
func NewClients(ctx context.Context, ac config.AWS) (*Clients, error) {
	cfg, err := awsconf.Load(ctx, ac)
	if err != nil {
		return nil, err
	}
	return &Clients{
		Region:      cfg.Region,
		Credentials: cfg.Credentials,
		Kinesis:     kinesis.NewFromConfig(cfg, awsconf.KinesisOptions(ac)),
		Firehose:    firehose.NewFromConfig(cfg, awsconf.FirehoseOptions(ac)),
		STS:         sts.NewFromConfig(cfg),
	}, nil
}

// callTimeout bounds each AWS call, so that an unreachable endpoint gives a FAIL line within
// seconds rather than the SDK's retries for minutes.
const callTimeout = 15 * time.Second

func checkAWS(ctx context.Context, r *Report, cfg *config.Config, build func(context.Context) (*Clients, error)) {
	var needAWS bool
	for _, f := range cfg.Flows {
		if f.Kinesis != nil || f.Firehose != nil {
			needAWS = true
		}
	}
	if !needAWS {
		return
	}
	if build == nil {
		r.add(Fail, "credentials", "", "no AWS configuration to check with", "")
		return
	}
	c, err := build(ctx)
	if err != nil {
		r.add(Fail, "credentials", "", err.Error(), "set aws.region in the configuration, or AWS_REGION in the unit's environment")
		return
	}
	if !checkCredentials(ctx, r, c) {
		return
	}
	checkIdentity(ctx, r, c)
	kinesisDone := map[string]bool{}
	firehoseDone := map[string]bool{}
	for _, f := range cfg.Flows {
		switch {
		case f.Kinesis != nil && !kinesisDone[f.Kinesis.Stream]:
			kinesisDone[f.Kinesis.Stream] = true
			keyed := false
			for _, g := range cfg.Flows {
				if g.Kinesis != nil && g.Kinesis.Stream == f.Kinesis.Stream && flow.KeysFromLines(g) {
					keyed = true
				}
			}
			checkKinesis(ctx, r, c, f.Kinesis.Stream, keyed)
		case f.Firehose != nil && !firehoseDone[f.Firehose.DeliveryStream]:
			firehoseDone[f.Firehose.DeliveryStream] = true
			checkFirehose(ctx, r, c, f.Firehose.DeliveryStream)
		}
	}
}

// sourceNames say in an operator's words where the SDK's default chain found credentials.
var sourceNames = map[string]string{
	"EnvConfigCredentials":        "environment variables (AWS_ACCESS_KEY_ID)",
	"SharedConfigCredentials":     "a shared credentials or config file",
	"EC2RoleProvider":             "the EC2 instance role (instance metadata service)",
	"AssumeRoleProvider":          "aws.role_arn, assumed through STS",
	"WebIdentityCredentials":      "a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)",
	"CredentialsEndpointProvider": "the container credentials endpoint (ECS task role, EKS Pod Identity)",
	"SSOProvider":                 "an IAM Identity Center (SSO) session",
	"ProcessProvider":             "a credential_process",
	"StaticCredentials":           "static credentials",
}

// personalSources are chain sources that belong to whoever runs check (their shell, their
// home directory): the service, with its own user and environment, will not find them.
var personalSources = []string{"EnvConfigCredentials", "SharedConfigCredentials", "SSOProvider", "ProcessProvider"}

func checkCredentials(ctx context.Context, r *Report, c *Clients) bool {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		r.add(Fail, "credentials", "", "the AWS credential chain found none: "+oneLine(err),
			"attach an instance role (or set aws.role_arn, or AWS_* variables in a unit drop-in)")
		return false
	}
	raw, _, _ := strings.Cut(creds.Source, ":")
	name := sourceNames[raw]
	if name == "" {
		name = creds.Source
	}
	msg := fmt.Sprintf("from %s (source %s), access key %s", name, creds.Source, maskKey(creds.AccessKeyID))
	if creds.CanExpire {
		msg += fmt.Sprintf(", temporary, expires %s", creds.Expires.UTC().Format(time.RFC3339))
	}
	for _, p := range personalSources {
		if raw == p {
			r.add(Warn, "credentials", "", msg+"; these come from the environment or home directory of whoever runs check",
				"make sure the service has them too (a unit drop-in with Environment= or EnvironmentFile=, or the kinship user's ~/.aws): an instance role needs neither")
			return true
		}
	}
	r.add(OK, "credentials", "", msg, "")
	return true
}

// maskKey shows an access key id as the AWS CLI's `configure list` does: its last four
// characters. The prefix (AKIA long-term, ASIA temporary) stays in Source's wording; the
// secret is never read.
func maskKey(id string) string {
	if len(id) <= 4 {
		return "****"
	}
	return strings.Repeat("*", 16) + id[len(id)-4:]
}

// authFailures are error codes meaning the credentials themselves were refused.
var authFailures = []string{"InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException",
	"UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignature", "AccessDenied", "AccessDeniedException"}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isAuthFailure(err error) bool {
	code := errorCode(err)
	for _, c := range authFailures {
		if code == c {
			return true
		}
	}
	return false
}

// checkIdentity asks STS who the credentials belong to. GetCallerIdentity needs no IAM
// permission, so it proves the credentials are valid and names the principal whose
// policies must allow the writes.
func checkIdentity(ctx context.Context, r *Report, c *Clients) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	switch {
	case err == nil:
		r.add(OK, "identity", "", fmt.Sprintf("%s (account %s)", aws.ToString(out.Arn), aws.ToString(out.Account)), "")
	case isAuthFailure(err):
		r.add(Fail, "identity", "", "STS rejected the credentials: "+oneLine(err),
			"the key is wrong, deleted or expired: fix or rotate it")
	default:
		r.add(Warn, "identity", "", "could not ask STS who the credentials belong to: "+oneLine(err),
			"the agent needs STS only for aws.role_arn; check the network path to STS if it is set")
	}
}

// checkKinesis reads what can be read about stream. Permission to write cannot be proven
// without writing: a PutRecords with no records is refused by request validation
// (kinesalite answers ValidationException, "Records must have length greater than or equal
// to 1"), and AWS does not document that authorization runs before validation, so a refusal
// proves nothing either way. check writes nothing to a stream that consumers read; the
// agent's first send proves the permission, and a refusal shows as
// kinship_send_errors_total{reason="config"} and one log line a minute.
func checkKinesis(ctx context.Context, r *Report, c *Clients, stream string, keyed bool) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	in := &kinesis.DescribeStreamSummaryInput{}
	if strings.HasPrefix(stream, "arn:") {
		in.StreamARN = aws.String(stream)
	} else {
		in.StreamName = aws.String(stream)
	}
	out, err := c.Kinesis.DescribeStreamSummary(ctx, in)
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		r.add(Fail, "kinesis", stream, fmt.Sprintf("stream does not exist in %s", c.Region),
			"create it, or fix kinesis.stream or aws.region")
		return
	case err != nil && isAuthFailure(err):
		r.add(Warn, "kinesis", stream, "cannot describe the stream: "+oneLine(err),
			"the agent needs only kinesis:PutRecords (and kinesis:ListShards with keys from lines); grant kinesis:DescribeStreamSummary to let check verify the stream")
		if keyed {
			checkListShards(ctx, r, c, stream)
		}
		return
	case err != nil:
		r.add(Fail, "kinesis", stream, "cannot reach Kinesis: "+oneLine(err),
			"check aws.endpoint, the region and the network path (proxy, VPC endpoint)")
		return
	}
	s := out.StreamDescriptionSummary
	msg := fmt.Sprintf("%s, %d open shards", s.StreamStatus, aws.ToInt32(s.OpenShardCount))
	if s.StreamModeDetails != nil && s.StreamModeDetails.StreamMode == types.StreamModeOnDemand {
		msg += ", on-demand"
	}
	if s.EncryptionType == types.EncryptionTypeKms {
		msg += fmt.Sprintf(", encrypted with KMS key %s (writers also need kms:GenerateDataKey on it)", aws.ToString(s.KeyId))
	}
	msg += "; write permission not proven (only a write proves kinesis:PutRecords; check never writes)"
	switch s.StreamStatus {
	case types.StreamStatusActive, types.StreamStatusUpdating:
		r.add(OK, "kinesis", stream, msg, "")
	case types.StreamStatusCreating:
		r.add(Warn, "kinesis", stream, msg, "wait until it is ACTIVE")
	default:
		r.add(Fail, "kinesis", stream, msg, "the stream is going away: create it again or point kinesis.stream elsewhere")
		return
	}
	if keyed {
		checkListShards(ctx, r, c, stream)
	}
}

// checkListShards: flows that take partition keys from lines pack per shard, so the agent
// itself calls ListShards; without that permission they cannot ship.
func checkListShards(ctx context.Context, r *Report, c *Clients, stream string) {
	in := &kinesis.ListShardsInput{MaxResults: aws.Int32(1000)}
	if strings.HasPrefix(stream, "arn:") {
		in.StreamARN = aws.String(stream)
	} else {
		in.StreamName = aws.String(stream)
	}
	out, err := c.Kinesis.ListShards(ctx, in)
	if err != nil {
		r.add(Fail, "kinesis", stream, "ListShards failed: "+oneLine(err),
			"flows with partition keys from the lines need kinesis:ListShards on the stream")
		return
	}
	r.add(OK, "kinesis", stream, fmt.Sprintf("ListShards allowed (%d shards listed): keys from lines can be packed per shard", len(out.Shards)), "")
}

// checkFirehose reads the delivery stream; as for Kinesis, only a write would prove
// firehose:PutRecordBatch.
func checkFirehose(ctx context.Context, r *Report, c *Clients, name string) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out, err := c.Firehose.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String(name)})
	var notFound *fhtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		r.add(Fail, "firehose", name, fmt.Sprintf("delivery stream does not exist in %s", c.Region),
			"create it, or fix firehose.delivery_stream or aws.region")
		return
	case err != nil && isAuthFailure(err):
		r.add(Warn, "firehose", name, "cannot describe the delivery stream: "+oneLine(err),
			"the agent needs only firehose:PutRecordBatch; grant firehose:DescribeDeliveryStream to let check verify it")
		return
	case err != nil:
		r.add(Fail, "firehose", name, "cannot reach Firehose: "+oneLine(err),
			"check aws.firehose_endpoint or aws.endpoint, the region and the network path")
		return
	}
	d := out.DeliveryStreamDescription
	msg := fmt.Sprintf("%s, source %s; write permission not proven (only a write proves firehose:PutRecordBatch; check never writes)",
		d.DeliveryStreamStatus, d.DeliveryStreamType)
	switch {
	case d.DeliveryStreamType == fhtypes.DeliveryStreamTypeKinesisStreamAsSource:
		r.add(Fail, "firehose", name, msg, "a delivery stream reading a Kinesis stream refuses direct puts: ship to that Kinesis stream instead (kinesis.stream)")
	case d.DeliveryStreamStatus == fhtypes.DeliveryStreamStatusActive:
		r.add(OK, "firehose", name, msg, "")
	case d.DeliveryStreamStatus == fhtypes.DeliveryStreamStatusCreating:
		r.add(Warn, "firehose", name, msg, "wait until it is ACTIVE")
	default:
		r.add(Fail, "firehose", name, msg, "recreate the delivery stream or point firehose.delivery_stream elsewhere")
	}
}

// oneLine keeps an SDK error on the result's line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
