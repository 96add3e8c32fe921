package kinesisapi

import (
	"context"
	"encoding/pem"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	ftypes "github.com/aws/aws-sdk-go-v2/service/firehose/types"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/awsconf"
)

// The client sends where the SDK's Kinesis client would: aws.endpoint, else
// AWS_ENDPOINT_URL_KINESIS, else AWS_ENDPOINT_URL, else the region's endpoint (its partition's
// domain, FIPS when asked), and a stream ARN's account endpoint for requests by ARN.
func TestEndpointAsTheSDK(t *testing.T) {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KINESIS",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	cases := []struct {
		name, region, file string
		env                map[string]string
		arn                string
		want               string
	}{
		{name: "region default", region: "us-east-1", want: "https://kinesis.us-east-1.amazonaws.com/"},
		{name: "china partition", region: "cn-north-1", want: "https://kinesis.cn-north-1.amazonaws.com.cn/"},
		{name: "fips", region: "us-west-2", env: map[string]string{"AWS_USE_FIPS_ENDPOINT": "true"}, want: "https://kinesis-fips.us-west-2.amazonaws.com/"},
		{name: "generic env", region: "us-east-1", env: map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1111"}, want: "http://127.0.0.1:1111/"},
		{name: "kinesis env wins", region: "us-east-1", env: map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1111",
			"AWS_ENDPOINT_URL_KINESIS": "http://127.0.0.1:2222"}, want: "http://127.0.0.1:2222/"},
		{name: "aws.endpoint wins", region: "us-east-1", file: "http://127.0.0.1:3333", env: map[string]string{
			"AWS_ENDPOINT_URL_KINESIS": "http://127.0.0.1:2222"}, want: "http://127.0.0.1:3333/"},
		{name: "stream arn", region: "us-east-1", arn: "arn:aws:kinesis:us-east-1:123456789012:stream/s",
			want: "https://123456789012.data-kinesis.us-east-1.amazonaws.com/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := awsconf.Load(context.Background(), config.AWS{Region: tc.region, Endpoint: tc.file})
			if err != nil {
				t.Fatal(err)
			}
			c, err := New(context.Background(), cfg, Options{Endpoint: tc.file})
			if err != nil {
				t.Fatal(err)
			}
			var arn *string
			if tc.arn != "" {
				arn = aws.String(tc.arn)
			}
			got, err := c.endpoint(context.Background(), arn)
			if err != nil || got != tc.want {
				t.Errorf("endpoint = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// AWS_CA_BUNDLE reaches the client through the SDK's HTTP client (the benchmark's TLS
// endpoint relies on it): with the bundle the TLS endpoint is trusted, without it it is not.
func TestCABundleIsTheSDKs(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		ct, ans := okAnswer(CBOR, 1)
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write(ans)
	}))
	defer srv.Close()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	in := testInput(1, rand.New(rand.NewPCG(1, 2)))
	for _, withBundle := range []bool{true, false} {
		t.Setenv("AWS_CA_BUNDLE", "")
		if withBundle {
			t.Setenv("AWS_CA_BUNDLE", bundle)
		}
		cfg, err := awsconf.Load(context.Background(), config.AWS{Region: "us-east-1", Endpoint: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(context.Background(), cfg, Options{Endpoint: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.PutRecords(context.Background(), in)
		if withBundle && err != nil {
			t.Errorf("with AWS_CA_BUNDLE: %v", err)
		}
		if !withBundle && err == nil {
			t.Error("an untrusted certificate was accepted")
		}
	}
}

// Requests go over HTTP/1.1 even to a TLS endpoint that prefers HTTP/2 (as Kinesis offers
// it): HTTP/2's framing costs CPU and memory and buys nothing for a few large bodies. ALPN
// must not offer h2 at all, or such a server picks it for a connection the client then reads
// as HTTP/1.1.
func TestHTTP1OverTLS(t *testing.T) {
	var mu sync.Mutex
	protos := map[string]int{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		protos[r.Proto]++
		mu.Unlock()
		if r.Header.Get("X-Amz-Target") == firehoseTarget {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			_, _ = io.WriteString(w, `{"FailedPutCount":0,"Encrypted":false,"RequestResponses":[{"RecordId":"1"}]}`)
			return
		}
		ct, ans := okAnswer(CBOR, 3)
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write(ans)
	}))
	cfg := h2TLSEndpoint(t, srv)
	const inFlight = 4
	for name, put := range map[string]func() error{
		"kinesis": func() func() error {
			c, err := New(context.Background(), cfg, Options{Endpoint: srv.URL, MaxInFlight: inFlight})
			if err != nil {
				t.Fatal(err)
			}
			in := testInput(3, rand.New(rand.NewPCG(1, 2)))
			return func() error { _, err := c.PutRecords(context.Background(), in); return err }
		}(),
		"firehose": func() func() error {
			c, err := NewFirehose(context.Background(), cfg, FirehoseOptions{MaxInFlight: inFlight, FirehoseOptions: []func(*firehose.Options){
				func(o *firehose.Options) { o.BaseEndpoint = aws.String(srv.URL) },
			}})
			if err != nil {
				t.Fatal(err)
			}
			in := &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("d"), Records: []ftypes.Record{{Data: []byte("x")}}}
			return func() error { _, err := c.PutRecordBatch(context.Background(), in); return err }
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			mu.Lock()
			clear(protos)
			mu.Unlock()
			for round := 0; round < 5; round++ {
				var wg sync.WaitGroup
				errs := make(chan error, inFlight)
				for range inFlight {
					wg.Go(func() { errs <- put() })
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(protos) != 1 || protos["HTTP/1.1"] != 5*inFlight {
				t.Errorf("requests by protocol: %v, want all %d over HTTP/1.1", protos, 5*inFlight)
			}
		})
	}
}

// h2TLSEndpoint starts srv over TLS offering HTTP/2 (as Kinesis does), closed when the test
// ends, and returns the AWS configuration the agent would load for it: dummy static
// credentials, no IMDS, and srv's certificate as the CA bundle.
func h2TLSEndpoint(tb testing.TB, srv *httptest.Server) aws.Config {
	tb.Helper()
	srv.EnableHTTP2 = true
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	bundle := filepath.Join(tb.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Setenv("AWS_CONFIG_FILE", "/dev/null")
	tb.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	tb.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	tb.Setenv("AWS_ACCESS_KEY_ID", "test")
	tb.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	tb.Setenv("AWS_CA_BUNDLE", bundle)
	cfg, err := awsconf.Load(context.Background(), config.AWS{Region: "us-east-1", Endpoint: srv.URL})
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}
