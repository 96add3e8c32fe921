package kinesisapi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/schemas"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
)

const firehoseTarget = "Firehose_20150804.PutRecordBatch"

// FirehoseOptions configure a FirehoseClient.
type FirehoseOptions struct {
	// MaxInFlight is how many request buffers are kept for reuse [4].
	MaxInFlight int
	// FirehoseOptions are applied to the SDK's options before the endpoint and the HTTP
	// client are taken from them: aws.firehose_endpoint / aws.endpoint (internal/awsconf).
	FirehoseOptions []func(*firehose.Options)
}

// FirehoseClient sends PutRecordBatch requests the way Client sends PutRecords: the body
// written once into a pooled buffer sized from its records and hashed while written, the
// SDK's signer, HTTP client, endpoint, decoder and error types, no retries. Firehose speaks
// JSON only, so records travel in base64. It is safe for concurrent use.
type FirehoseClient struct {
	send    sender
	url     string
	decoder smithyhttp.ClientProtocol
	schema  *smithy.OperationSchema
}

// NewFirehose returns a client with cfg's region, credentials and HTTP client, and the
// endpoint the SDK's Firehose client would use.
func NewFirehose(ctx context.Context, cfg aws.Config, o FirehoseOptions) (*FirehoseClient, error) {
	fo := firehose.NewFromConfig(cfg, o.FirehoseOptions...).Options()
	if fo.Region == "" {
		return nil, fmt.Errorf("kinesisapi: no region")
	}
	ep, err := fo.EndpointResolverV2.ResolveEndpoint(ctx, firehose.EndpointParameters{
		Region:       aws.String(fo.Region),
		UseDualStack: aws.Bool(fo.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
		UseFIPS:      aws.Bool(fo.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		Endpoint:     fo.BaseEndpoint,
	})
	if err != nil {
		return nil, fmt.Errorf("kinesisapi: resolve firehose endpoint: %w", err)
	}
	u := ep.URI
	if u.Path == "" {
		u.Path = "/"
	}
	return &FirehoseClient{
		send:    newSender("firehose", fo.Region, fo.Credentials, fo.HTTPClient, o.MaxInFlight),
		url:     u.String(),
		decoder: awsjson.New11(schemas.Firehose_20150804),
		schema:  smithy.NewOperationSchema(schemas.PutRecordBatch, schemas.PutRecordBatchInput, schemas.PutRecordBatchOutput),
	}, nil
}

// BufferBytes returns the bytes of request buffers the client holds.
func (c *FirehoseClient) BufferBytes() int64 { return c.send.bufs.held.Load() }

// PutRecordBatch sends in as one request, once.
func (c *FirehoseClient) PutRecordBatch(ctx context.Context, in *firehose.PutRecordBatchInput, _ ...func(*firehose.Options)) (*firehose.PutRecordBatchOutput, error) {
	out, err := c.put(ctx, in)
	if err != nil {
		return nil, &smithy.OperationError{ServiceID: "Firehose", OperationName: "PutRecordBatch", Err: err}
	}
	return out, nil
}

func (c *FirehoseClient) put(ctx context.Context, in *firehose.PutRecordBatchInput) (*firehose.PutRecordBatchOutput, error) {
	if in == nil || in.DeliveryStreamName == nil {
		return nil, fmt.Errorf("kinesisapi: PutRecordBatch needs DeliveryStreamName")
	}
	creds, err := c.send.credentials(ctx)
	if err != nil {
		return nil, err
	}
	req := c.send.bufs.get()
	h := sha256.New()
	req.frame = appendFirehoseJSON(req.grow(firehoseJSONSize(in)), in, h)
	req.segs = append(req.segs, req.frame)
	req.size = len(req.frame)
	var sum [sha256.Size]byte
	resp, err := c.send.do(ctx, c.url, JSON.contentType(), firehoseTarget, creds, req, hex.EncodeToString(h.Sum(sum[:0])))
	if err != nil {
		return nil, err
	}
	out := &firehose.PutRecordBatchOutput{}
	err = decode(ctx, JSON, c.decoder, c.schema, firehose.TypeRegistry, resp, out)
	req.release(ctx, c.send.bufs)
	if err != nil {
		return nil, err
	}
	return out, nil
}

const (
	firehoseOpen     = `{"DeliveryStreamName":`
	firehoseRecords  = `,"Records":[`
	firehoseData     = `{"Data":"`
	firehoseEntryEnd = `"}`
	firehoseClose    = `]}`
)

func firehoseJSONSize(in *firehose.PutRecordBatchInput) int {
	n := len(firehoseOpen) + jsonStringLen(validKey(*in.DeliveryStreamName)) + len(firehoseRecords) + len(firehoseClose)
	for i, r := range in.Records {
		if i > 0 {
			n++
		}
		n += len(firehoseData) + base64.StdEncoding.EncodedLen(len(r.Data)) + len(firehoseEntryEnd)
	}
	return n
}

func appendFirehoseJSON(dst []byte, in *firehose.PutRecordBatchInput, h hash.Hash) []byte {
	hashed := len(dst)
	dst = append(dst, firehoseOpen...)
	dst = appendJSONString(dst, validKey(*in.DeliveryStreamName))
	dst = append(dst, firehoseRecords...)
	for i, r := range in.Records {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, firehoseData...)
		dst = base64.StdEncoding.AppendEncode(dst, r.Data)
		dst = append(dst, firehoseEntryEnd...)
		if len(dst)-hashed >= hashChunk {
			h.Write(dst[hashed:])
			hashed = len(dst)
		}
	}
	dst = append(dst, firehoseClose...)
	h.Write(dst[hashed:])
	return dst
}
