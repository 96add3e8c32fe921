package kinesisapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/encoding/cbor"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/aws/smithy-go/transport/http/protocol/rpcv2"
)

// Options configure a Client.
type Options struct {
	// Protocol is the wire format [CBOR].
	Protocol Protocol
	// Endpoint is aws.endpoint: when set it wins over AWS_ENDPOINT_URL_KINESIS and
	// AWS_ENDPOINT_URL, as it does for the SDK's clients (internal/awsconf).
	Endpoint string
	// MaxInFlight is how many request buffers are kept for reuse [4]: the shipper's
	// max_in_flight, so that steady sending allocates none.
	MaxInFlight int
	// KinesisOptions are applied to the SDK's options before the endpoint and the HTTP
	// client are taken from them (tests; the agent passes none).
	KinesisOptions []func(*kinesis.Options)
}

// maxResponseBytes bounds how much of an answer is read: a PutRecords answer of 500 entries
// is under 100 KiB, so a larger one is not from Kinesis and must not cost memory.
const maxResponseBytes = 4 << 20

// target is the X-Amz-Target of PutRecords, the same for both protocols.
const target = "Kinesis_20131202.PutRecords"

// Client sends PutRecords requests. It is safe for concurrent use.
type Client struct {
	protocol Protocol
	send     sender
	decoder  smithyhttp.ClientProtocol
	schema   *smithy.OperationSchema
	endpoint func(ctx context.Context, streamARN *string) (string, error)
}

// sender signs and sends request bodies, once, with the SDK's signer and HTTP client.
type sender struct {
	service string // the SigV4 signing name
	region  string
	creds   aws.CredentialsProvider // nil: anonymous, requests are not signed
	signer  *v4.Signer
	http    interface {
		Do(*http.Request) (*http.Response, error)
	}
	bufs *bufPool
}

func newSender(service, region string, creds aws.CredentialsProvider, client kinesis.HTTPClient, maxInFlight int) sender {
	if _, ok := creds.(aws.AnonymousCredentials); ok {
		creds = nil
	}
	return sender{
		service: service,
		region:  region,
		creds:   creds,
		signer: v4.NewSigner(func(so *v4.SignerOptions) {
			so.LogSigning = false // signatures and session tokens stay out of logs
		}),
		http: tuneHTTPClient(client, maxInFlight),
		bufs: newBufPool(maxInFlight),
	}
}

// credentials returns the credentials to sign with (their provider's cache answers).
func (s *sender) credentials(ctx context.Context) (aws.Credentials, error) {
	if s.creds == nil {
		return aws.Credentials{}, nil
	}
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return creds, fmt.Errorf("get identity: %w", err) // as the SDK says it
	}
	return creds, nil
}

// do sends req (whose body hashes to payloadHash) to url, once. On success the caller closes
// the response, then releases req; on failure req is released here.
func (s *sender) do(ctx context.Context, url, contentType, target string, creds aws.Credentials, req *request, payloadHash string) (*http.Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		s.bufs.count(req)
		s.bufs.put(req)
		return nil, fmt.Errorf("kinesisapi: %w", err)
	}
	hreq.ContentLength = int64(req.size)
	hreq.Body = req.newBody()
	hreq.GetBody = func() (io.ReadCloser, error) { return req.newBody(), nil }
	hreq.Header.Set("Content-Type", contentType)
	hreq.Header.Set("X-Amz-Target", target)
	hreq.Header.Set("User-Agent", "kinship")
	if s.creds != nil {
		if err := s.signer.SignHTTP(ctx, creds, hreq, payloadHash, s.service, s.region, time.Now().UTC()); err != nil {
			req.release(ctx, s.bufs)
			return nil, &v4.SigningError{Err: fmt.Errorf("failed to sign http request, %w", err)}
		}
	}
	resp, err := s.http.Do(hreq)
	if err != nil {
		req.release(ctx, s.bufs)
		if ctx.Err() != nil {
			return nil, &smithy.CanceledError{Err: err}
		}
		return nil, &smithyhttp.RequestSendError{Err: err}
	}
	return resp, nil
}

// decode reads resp with the SDK's own protocol decoder into out, and wraps an error as the
// SDK's client does: an HTTP response error (status code, request id) around the API error.
// It closes resp's body.
func decode(ctx context.Context, p Protocol, decoder smithyhttp.ClientProtocol, schema *smithy.OperationSchema,
	types *smithy.TypeRegistry, resp *http.Response, out smithy.Deserializable) error {
	body := resp.Body
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(body, maxResponseBytes)) // keeps the connection reusable
		_ = body.Close()
	}()
	resp.Body = io.NopCloser(io.LimitReader(body, maxResponseBytes))
	if p == CBOR && (resp.StatusCode < 200 || resp.StatusCode >= 300) {
		resp.Body = cborErrorBody(resp)
	}
	sresp := &smithyhttp.Response{Response: resp}
	err := decoder.DeserializeResponse(ctx, schema, types, sresp, out)
	if err == nil {
		return nil
	}
	reqID := resp.Header.Get("X-Amzn-Requestid")
	if reqID == "" {
		reqID = resp.Header.Get("X-Amz-Request-Id")
	}
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{Response: sresp, Err: err}, RequestID: reqID}
}

// New returns a client with cfg's region, credentials (and their cache) and HTTP client, and
// the endpoint the SDK's Kinesis client would use.
func New(ctx context.Context, cfg aws.Config, o Options) (*Client, error) {
	optFns := append([]func(*kinesis.Options){}, o.KinesisOptions...)
	if o.Endpoint != "" {
		optFns = append(optFns, func(ko *kinesis.Options) { ko.BaseEndpoint = aws.String(o.Endpoint) })
	}
	ko := kinesis.NewFromConfig(cfg, optFns...).Options()
	if ko.Region == "" {
		return nil, fmt.Errorf("kinesisapi: no region")
	}
	c := &Client{
		protocol: o.Protocol,
		send:     newSender("kinesis", ko.Region, ko.Credentials, ko.HTTPClient, o.MaxInFlight),
		schema:   smithy.NewOperationSchema(schemas.PutRecords, schemas.PutRecordsInput, schemas.PutRecordsOutput),
	}
	if c.protocol == JSON {
		c.decoder = awsjson.New11(schemas.Kinesis_20131202)
	} else {
		c.decoder = rpcv2.NewCBOR(schemas.Kinesis_20131202)
	}
	resolve := func(ctx context.Context, arn *string) (string, error) {
		ep, err := ko.EndpointResolverV2.ResolveEndpoint(ctx, kinesis.EndpointParameters{
			Region:        aws.String(ko.Region),
			UseDualStack:  aws.Bool(ko.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
			UseFIPS:       aws.Bool(ko.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
			Endpoint:      ko.BaseEndpoint,
			OperationType: aws.String("data"),
			StreamARN:     arn,
		})
		if err != nil {
			return "", fmt.Errorf("kinesisapi: resolve endpoint: %w", err)
		}
		u := ep.URI
		if u.Path == "" {
			u.Path = "/"
		}
		return u.String(), nil
	}
	byName, err := resolve(ctx, nil)
	if err != nil {
		return nil, err
	}
	// A stream ARN may resolve to an account-specific endpoint; a client serves one stream,
	// so one resolution per ARN, remembered.
	var mu sync.Mutex
	byARN := map[string]string{}
	c.endpoint = func(ctx context.Context, arn *string) (string, error) {
		if arn == nil {
			return byName, nil
		}
		mu.Lock()
		defer mu.Unlock()
		if u, ok := byARN[*arn]; ok {
			return u, nil
		}
		u, err := resolve(ctx, arn)
		if err == nil && len(byARN) < 16 {
			byARN[*arn] = u
		}
		return u, err
	}
	return c, nil
}

// tuneHTTPClient keeps the SDK's own HTTP client (its dialer and TLS timeouts, proxies from
// the environment, CA bundle) and changes how it sends:
//
//   - Over TLS the connection is a bodyConn (tlsDialer), so that a request body writes
//     itself to the TLS connection in whole records, without the transport's copy.
//   - The write buffer takes the headers and, read into it before the rest of the body is
//     handed to bodyConn, the body's first bytes: one TLS record's worth, so that the first
//     record is full too. 4, 16 and 64 KiB measured the same CPU; 16 KiB holds less memory
//     per connection than 64.
//   - HTTP/1.1 only: each request in flight gets its own connection, so HTTP/2's framing,
//     flow control and per-stream locking buy nothing for a few large bodies and cost about
//     a third of the sending CPU and the memory of its stream buffers (Kinesis and Firehose
//     take HTTP/1.1, as the AWS SDKs for Java v1 and Go v1 send it). ALPN offers "http/1.1"
//     alone, so that a server that prefers h2 cannot pick it for a connection the transport
//     then reads as HTTP/1.1.
//
// A client that is not the SDK's buildable one is used as it is.
func tuneHTTPClient(c kinesis.HTTPClient, maxInFlight int) kinesis.HTTPClient {
	b, ok := c.(*awshttp.BuildableClient)
	if !ok {
		return c
	}
	_, readTimeout := b.GetReadTimeout()
	return b.WithTransportOptions(func(t *http.Transport) {
		t.WriteBufferSize = tlsRecord
		t.ReadBufferSize = 16 << 10
		forceHTTP1(t)
		// A read timeout is installed by wrapping DialContext after these options run,
		// which a dialer made here would not see: such a client keeps the transport's own.
		if t.DialTLSContext == nil && t.DialTLS == nil && !readTimeout {
			t.DialTLSContext = tlsDialer(t)
		}
		// Idle connections are what the next requests reuse: fewer than the requests in
		// flight would mean a new TLS handshake for some of them every round.
		if t.MaxIdleConnsPerHost < maxInFlight {
			t.MaxIdleConnsPerHost = maxInFlight
		}
		if t.MaxIdleConns != 0 && t.MaxIdleConns < t.MaxIdleConnsPerHost {
			t.MaxIdleConns = t.MaxIdleConnsPerHost
		}
	})
}

// forceHTTP1 makes t speak HTTP/1.1 only, over TLS too, keeping its TLS settings (CA bundle,
// minimum version) otherwise.
func forceHTTP1(t *http.Transport) {
	t.ForceAttemptHTTP2 = false
	var p http.Protocols
	p.SetHTTP1(true)
	t.Protocols = &p
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		t.TLSClientConfig = t.TLSClientConfig.Clone()
	}
	t.TLSClientConfig.NextProtos = []string{"http/1.1"}
}

// BufferBytes returns the bytes of request buffers the client holds (in use and kept for
// reuse): bounded by the requests in flight and Options.MaxInFlight, never by the input.
func (c *Client) BufferBytes() int64 { return c.send.bufs.held.Load() }

// PutRecords sends in as one request, once: the client never retries. Errors are those of
// the SDK's client, wrapped the same way.
func (c *Client) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	out, err := c.put(ctx, in)
	if err != nil {
		return nil, &smithy.OperationError{ServiceID: "Kinesis", OperationName: "PutRecords", Err: err}
	}
	return out, nil
}

func (c *Client) put(ctx context.Context, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
	if in == nil {
		in = &kinesis.PutRecordsInput{}
	}
	if err := checkInput(in); err != nil {
		return nil, err
	}
	url, err := c.endpoint(ctx, in.StreamARN)
	if err != nil {
		return nil, err
	}
	creds, err := c.send.credentials(ctx)
	if err != nil {
		return nil, err
	}

	req := c.send.bufs.get()
	h := sha256.New()
	if c.protocol == JSON {
		req.frame = appendJSON(req.grow(jsonSize(in)), in, h)
		req.segs = append(req.segs, req.frame)
		req.size = len(req.frame)
	} else {
		req.growSegs(2*len(in.Records) + 1)
		req.frame, req.segs, req.size = encodeCBOR(req.grow(cborFramingSize(in)), req.segs, in, h)
	}
	var sum [sha256.Size]byte
	resp, err := c.send.do(ctx, url, c.protocol.contentType(), target, creds, req, hex.EncodeToString(h.Sum(sum[:0])))
	if err != nil {
		return nil, err
	}
	out, err := c.decode(ctx, resp)
	req.release(ctx, c.send.bufs)
	return out, err
}

func (c *Client) decode(ctx context.Context, resp *http.Response) (*kinesis.PutRecordsOutput, error) {
	out := &kinesis.PutRecordsOutput{}
	if err := decode(ctx, c.protocol, c.decoder, c.schema, kinesis.TypeRegistry, resp, out); err != nil {
		return nil, err
	}
	return out, nil
}

// cborErrorBody returns the body of a CBOR error answer as the SDK's JSON decoder would read
// it: an empty body is an empty map (an "UnknownError", not a decoding failure), and a type
// named only in the X-Amzn-ErrorType header is the error's type (the smithy CBOR decoder reads
// the body alone; Kinesis may send either). A body that is not CBOR is left as it is.
func cborErrorBody(resp *http.Response) io.ReadCloser {
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return io.NopCloser(bytes.NewReader(b))
	}
	m := cbor.Map{}
	if len(b) > 0 {
		v, err := cbor.Decode(b)
		mv, ok := v.(cbor.Map)
		if err != nil || !ok {
			return io.NopCloser(bytes.NewReader(b))
		}
		m = mv
	}
	if _, ok := m["__type"]; !ok {
		if code := resp.Header.Get("X-Amzn-ErrorType"); code != "" {
			m["__type"] = cbor.String(code)
		}
	}
	return io.NopCloser(bytes.NewReader(cbor.Encode(m)))
}
