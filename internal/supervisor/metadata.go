package supervisor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/flow"
)

// imdsTimeout bounds the metadata look-up at start: off EC2 the service does not answer, and
// the agent must not hang on it.
const imdsTimeout = 5 * time.Second

// fetchMetadata gathers the EC2 context that add_metadata asks for: the host name, and the
// instance id and region through IMDSv2 (the SDK's client: a session token first, then the
// reads). AWS_EC2_METADATA_SERVICE_ENDPOINT overrides where IMDS is and
// AWS_EC2_METADATA_DISABLED=true turns it off, as for every SDK. What cannot be found is
// logged once and left out of the records: shipping the lines matters more than their labels.
func fetchMetadata(ctx context.Context, m *config.AddMetadata, log *slog.Logger) flow.Metadata {
	var md flow.Metadata
	if m == nil {
		return md
	}
	if m.Hostname {
		if h, err := os.Hostname(); err == nil {
			md.Host = h
		} else {
			log.Warn("add_metadata: no host name", "err", err)
		}
	}
	if !m.NeedsIMDS() {
		return md
	}
	ctx, cancel := context.WithTimeout(ctx, imdsTimeout)
	defer cancel()
	client := imds.New(imds.Options{})
	if m.InstanceID {
		id, err := instanceID(ctx, client)
		if err != nil {
			log.Warn("add_metadata: instance id unavailable from IMDS; records go without it", "err", err)
		}
		md.InstanceID = id
	}
	if m.Region {
		out, err := client.GetRegion(ctx, &imds.GetRegionInput{})
		if err != nil {
			log.Warn("add_metadata: region unavailable from IMDS; records go without it", "err", err)
		} else {
			md.Region = out.Region
		}
	}
	return md
}

func instanceID(ctx context.Context, client *imds.Client) (string, error) {
	out, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"})
	if err != nil {
		return "", err
	}
	defer func() { _ = out.Content.Close() }()
	b, err := io.ReadAll(io.LimitReader(out.Content, 256))
	if err != nil {
		return "", fmt.Errorf("imds: read instance-id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// metadataFor returns the metadata a flow needs, asking IMDS at most once per process.
func (s *Supervisor) metadataFor(fc config.Flow) flow.Metadata {
	if fc.AddMetadata == nil {
		return flow.Metadata{}
	}
	if s.md == nil {
		all := config.AddMetadata{Hostname: true}
		for _, f := range s.cfg.Flows {
			if f.AddMetadata.NeedsIMDS() {
				all.InstanceID, all.Region = true, true
			}
		}
		if fc.AddMetadata.NeedsIMDS() {
			all.InstanceID, all.Region = true, true
		}
		md := fetchMetadata(s.ctx, &all, s.log)
		s.md = &md
		s.log.Info("add_metadata: EC2 context", "host", md.Host, "instance_id", md.InstanceID, "region", md.Region)
	}
	return *s.md
}
