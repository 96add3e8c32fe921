package supervisor

import (
	"log/slog"
	"os"
	"testing"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/flow"
	"github.com/kinship-agent/kinship/internal/testenv/imdstest"
)

func TestFetchMetadataUsesIMDSv2(t *testing.T) {
	srv := imdstest.Start(t, "i-0123456789abcdef0", "eu-central-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)
	md := fetchMetadata(t.Context(), &config.AddMetadata{Hostname: true, InstanceID: true, Region: true}, slog.New(slog.DiscardHandler))
	host, _ := os.Hostname()
	if md.Host != host || md.InstanceID != "i-0123456789abcdef0" || md.Region != "eu-central-1" {
		t.Errorf("metadata = %+v", md)
	}
	if srv.TokenPuts.Load() == 0 || srv.Unauthorized.Load() != 0 {
		t.Errorf("token PUTs %d, unauthorized reads %d: not IMDSv2", srv.TokenPuts.Load(), srv.Unauthorized.Load())
	}
	// Off EC2 (IMDS disabled): the agent still starts, records just lack those fields.
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	md = fetchMetadata(t.Context(), &config.AddMetadata{InstanceID: true, Region: true}, slog.New(slog.DiscardHandler))
	if md != (flow.Metadata{}) {
		t.Errorf("metadata with IMDS disabled = %+v", md)
	}
}
