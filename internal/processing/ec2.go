package processing

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// InstanceMetadata is the part of the SDK's IMDS client ADDEC2METADATA uses (*imds.Client).
type InstanceMetadata interface {
	GetInstanceIdentityDocument(context.Context, *imds.GetInstanceIdentityDocumentInput, ...func(*imds.Options)) (*imds.GetInstanceIdentityDocumentOutput, error)
	GetMetadata(context.Context, *imds.GetMetadataInput, ...func(*imds.Options)) (*imds.GetMetadataOutput, error)
}

const (
	defaultMetadataTTL = time.Hour
	// imdsTimeout bounds one refresh; it runs on the record path, as in the Kinesis Agent.
	imdsTimeout = 5 * time.Second
	// metadataTimestampLayout is yyyy-MM-dd'T'HH:mm:ssZ in the local zone, as the Kinesis
	// Agent formats it in the JVM's default zone.
	metadataTimestampLayout = "2006-01-02T15:04:05-0700"
)

// addEC2Metadata is ADDEC2METADATA: the record, which must be a JSON object, gets the
// instance's identity (and its tags, when the instance exposes them) appended as fields.
//
// As in the Kinesis Agent: metadata is fetched at the first record and again once it is
// older than metadataTTL, failed attempts included; when there is none (not on EC2, or IMDS
// failing) records pass unchanged, without an error; a record that is not a JSON object is
// an error (the caller ships it raw); a record field with a metadata key is overwritten in
// its place.
type addEC2Metadata struct {
	imds    InstanceMetadata
	now     func() time.Time
	ttl     time.Duration
	pretty  bool
	logger  *slog.Logger
	fetched time.Time // zero: never tried
	fields  []string
	values  []*jsonValue // nil when the last refresh found no identity
	dec     decoder
}

func newAddEC2Metadata(o Options, deps Deps) (*addEC2Metadata, error) {
	// The Kinesis Agent builds (and so checks) a log parser for this option, though it never
	// uses it: logFormat is required.
	if _, _, _, err := logParser(o); err != nil {
		return nil, err
	}
	pretty, err := prettyFormat(o)
	if err != nil {
		return nil, err
	}
	if o.MetadataTTL < 0 {
		return nil, fmt.Errorf("metadataTTL %s is negative", o.MetadataTTL)
	}
	ttl := o.MetadataTTL
	if ttl == 0 {
		ttl = defaultMetadataTTL
	}
	client := deps.IMDS
	if client == nil {
		client = imds.New(imds.Options{})
	}
	return &addEC2Metadata{imds: client, now: deps.Now, ttl: ttl, pretty: pretty, logger: deps.Logger}, nil
}

func (p *addEC2Metadata) Process(dst, record []byte) ([]byte, bool, error) {
	if now := p.now(); p.fetched.IsZero() || p.fetched.Add(p.ttl).Before(now) {
		p.refresh(now)
	}
	if p.values == nil {
		return append(dst, record...), false, nil
	}
	obj, err := parseJSONObject(p.dec.decode(record))
	if err != nil {
		return dst, false, fmt.Errorf("record is not a JSON object: %w", err)
	}
	for i, k := range p.fields {
		obj.put(k, p.values[i])
	}
	dst = appendJSONValue(dst, obj, p.pretty, 0)
	return append(dst, '\n'), false, nil
}

func (p *addEC2Metadata) refresh(now time.Time) {
	p.fetched = now
	p.fields, p.values = nil, nil
	ctx, cancel := context.WithTimeout(context.Background(), imdsTimeout)
	defer cancel()
	doc, err := p.imds.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
	if err != nil {
		p.logger.Warn("processing: ADDEC2METADATA: no instance identity document; records pass unchanged until the next refresh",
			"error", err, "next", now.Add(p.ttl))
		return
	}
	str := func(s string) *jsonValue {
		if s == "" {
			return &jsonValue{kind: jsonNull}
		}
		return jsonStringValue(s)
	}
	d := doc.InstanceIdentityDocument
	p.fields = []string{"privateIp", "availabilityZone", "instanceId", "instanceType", "accountId", "amiId", "region", "metadataTimestamp"}
	p.values = []*jsonValue{str(d.PrivateIP), str(d.AvailabilityZone), str(d.InstanceID), str(d.InstanceType),
		str(d.AccountID), str(d.ImageID), str(d.Region), jsonStringValue(now.Format(metadataTimestampLayout))}
	tags, err := p.instanceTags(ctx)
	if err != nil {
		// The Kinesis Agent leaves "tags" out when ec2:DescribeTags fails.
		p.logger.Warn("processing: ADDEC2METADATA: no instance tags in the instance metadata (are they allowed there?); records get no \"tags\"",
			"error", err)
		return
	}
	p.fields = append(p.fields, "tags")
	p.values = append(p.values, tags)
}

// instanceTags reads meta-data/tags/instance (there only when the instance allows tags in
// its metadata); keys lower-cased as the Kinesis Agent does.
func (p *addEC2Metadata) instanceTags(ctx context.Context) (*jsonValue, error) {
	list, err := p.getMetadata(ctx, "tags/instance")
	if err != nil {
		return nil, err
	}
	tags := newJSONObject()
	for _, key := range strings.Split(list, "\n") {
		if key == "" {
			continue
		}
		value, err := p.getMetadata(ctx, "tags/instance/"+key)
		if err != nil {
			return nil, err
		}
		tags.put(strings.ToLower(key), jsonStringValue(value))
	}
	return tags, nil
}

func (p *addEC2Metadata) getMetadata(ctx context.Context, path string) (string, error) {
	out, err := p.imds.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", fmt.Errorf("imds %s: %w", path, err)
	}
	defer func() { _ = out.Content.Close() }()
	b, err := io.ReadAll(io.LimitReader(out.Content, 1<<20))
	if err != nil {
		return "", fmt.Errorf("imds %s: %w", path, err)
	}
	return string(b), nil
}
