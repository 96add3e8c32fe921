package supervisor

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/awsconf"
	"github.com/kinship-agent/kinship/shipper"
)

func destination(ctx context.Context, cfg *config.Config, fc config.Flow, awsCfg **aws.Config) (shipper.Destination, error) {
	switch {
	case fc.Discard != nil:
		return shipper.Discard{}, nil
	case fc.HTTP != nil:
		return httpDestination(fc)
	case fc.Firehose != nil:
		if *awsCfg == nil {
			c, err := awsconf.Load(ctx, cfg.AWS)
			if err != nil {
				return nil, err
			}
			*awsCfg = &c
		}
		client := shipper.NewFirehoseClient(**awsCfg, awsconf.FirehoseOptions(cfg.AWS))
		return shipper.NewFirehose(client, fc.Firehose.DeliveryStream), nil
	case fc.Kinesis != nil:
		if *awsCfg == nil {
			c, err := awsconf.Load(ctx, cfg.AWS)
			if err != nil {
				return nil, err
			}
			*awsCfg = &c
		}
		client := shipper.NewKinesisClient(**awsCfg, awsconf.KinesisOptions(cfg.AWS))
		limits := shipper.Limits{
			MaxRecordBytes:  int(fc.Kinesis.MaxRecordBytes),
			MaxRequestBytes: int(fc.Kinesis.MaxRequestBytes),
		}
		if keysFromLines(fc) {
			return shardAwareKinesis(client, fc.Kinesis.Stream, limits), nil
		}
		return shipper.NewKinesis(client, fc.Kinesis.Stream, limits), nil
	}
	return nil, fmt.Errorf("no destination configured")
}
