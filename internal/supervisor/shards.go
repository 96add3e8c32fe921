package supervisor

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
	shards   *shardmap.Map
	api      *shipper.ShardAware
	headroom *shipper.Headroom
}

// setLogger gives the map and the re-splitter the flow's logger (destination has none).
func (d shardedDestination) setLogger(l *slog.Logger) {
	d.shards.SetLogger(l)
	d.api.SetLogger(l)
}

// shardAwareKinesis sends through put; the shard map lists shards with the SDK's client.
// The headroom meter sits closest to put, inside ShardAware, so it measures the records as
// sent after any re-split.
func shardAwareKinesis(client *kinesis.Client, put shipper.KinesisAPI, stream string, limits shipper.Limits, hr shipper.HeadroomOptions) shardedDestination {
	m := shardmap.New(client, stream, shardmap.Options{})
	hr.Shards = m
	h := shipper.NewHeadroom(put, hr)
	api := shipper.NewShardAware(h, m, limits, nil)
	return shardedDestination{Destination: shipper.NewKinesis(api, stream, limits), shards: m, api: api, headroom: h}
}

func keysFromLines(fc config.Flow) bool { return flow.KeysFromLines(fc) }
