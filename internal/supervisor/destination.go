package supervisor

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/awsconf"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/shipper"
)

// built is a flow's destination and, for Kinesis flows, the headroom meter its PutRecords go
// through (reported as the flow's stream metrics while the flow runs).
type built struct {
	dst      shipper.Destination
	headroom *shipper.Headroom
}

func destination(ctx context.Context, cfg *config.Config, fc config.Flow, awsCfg **aws.Config, m *metrics.Flow, log *slog.Logger) (built, error) {
	hr := shipper.HeadroomOptions{Logger: log}
	switch {
	case fc.Discard != nil:
		return built{dst: shipper.Discard{}}, nil
	case fc.HTTP != nil:
		d, err := httpDestination(fc, m.LinesInvalidUTF8, log)
		return built{dst: d}, err
	case fc.Firehose != nil:
		if err := loadAWS(ctx, cfg, awsCfg); err != nil {
			return built{}, err
		}
		api, err := shipper.NewFirehoseAPI(ctx, **awsCfg, fc.Firehose.MaxInFlight, awsconf.FirehoseOptions(cfg.AWS))
		if err != nil {
			return built{}, err
		}
		return built{dst: shipper.NewFirehose(api, fc.Firehose.DeliveryStream)}, nil
	case fc.Kinesis != nil:
		if err := loadAWS(ctx, cfg, awsCfg); err != nil {
			return built{}, err
		}
		// PutRecords through the lean client (kinesis.protocol); the SDK's client stays for
		// the calls that are not on the data path (ListShards, DescribeStreamSummary).
		put, err := shipper.NewKinesisAPI(ctx, **awsCfg, shipper.KinesisAPIOptions{
			Protocol: fc.Kinesis.Protocol, Endpoint: cfg.AWS.Endpoint, MaxInFlight: fc.Kinesis.MaxInFlight})
		if err != nil {
			return built{}, err
		}
		client := shipper.NewKinesisClient(**awsCfg, awsconf.KinesisOptions(cfg.AWS))
		limits := shipper.Limits{
			MaxRecordBytes:  int(fc.Kinesis.MaxRecordBytes),
			MaxRequestBytes: int(fc.Kinesis.MaxRequestBytes),
		}
		hr.Stream = fc.Kinesis.Stream
		if keysFromLines(fc) {
			sd := shardAwareKinesis(client, put, fc.Kinesis.Stream, limits, hr)
			return built{dst: sd, headroom: sd.headroom}, nil
		}
		hr.Lister = client
		hr.RandomKeys = fc.Kinesis.PartitionKey == "" || fc.Kinesis.PartitionKey == config.DefaultPartitionKey
		h := shipper.NewHeadroom(put, hr)
		return built{dst: shipper.NewKinesis(h, fc.Kinesis.Stream, limits), headroom: h}, nil
	}
	return built{}, fmt.Errorf("no destination configured")
}

// loadAWS loads the AWS configuration on first use: aws settings change only with a restart.
func loadAWS(ctx context.Context, cfg *config.Config, awsCfg **aws.Config) error {
	if *awsCfg != nil {
		return nil
	}
	c, err := awsconf.Load(ctx, cfg.AWS)
	if err != nil {
		return err
	}
	*awsCfg = &c
	return nil
}
