package main

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/flow"
	"github.com/kinship-agent/kinship/internal/shardmap"
	"github.com/kinship-agent/kinship/shipper"
)

// shardedDestination is a Kinesis destination for a flow whose partition keys come from
// the lines: the flow's aggregator packs per shard with the same map that the destination
// checks records against before sending.
type shardedDestination struct {
	shipper.Destination
	shards *shardmap.Map
	api    *shipper.ShardAware
}

// setLogger gives the map and the re-splitter the flow's logger (destination has none).
func (d shardedDestination) setLogger(l *slog.Logger) {
	d.shards.SetLogger(l)
	d.api.SetLogger(l)
}

func shardAwareKinesis(client *kinesis.Client, put shipper.KinesisAPI, stream string, limits shipper.Limits) shardedDestination {
	m := shardmap.New(client, stream, shardmap.Options{})
	api := shipper.NewShardAware(put, m, limits, nil)
	return shardedDestination{Destination: shipper.NewKinesis(api, stream, limits), shards: m, api: api}
}

func keysFromLines(fc config.Flow) bool { return flow.KeysFromLines(fc) }
