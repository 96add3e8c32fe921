package kinesisapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/encoding/cbor"
)

// okAnswer is a PutRecords answer accepting n records, in p.
func okAnswer(p Protocol, n int) (string, []byte) {
	if p == CBOR {
		l := make(cbor.List, n)
		for i := range l {
			l[i] = cbor.Map{"ShardId": cbor.String("shardId-000000000000"), "SequenceNumber": cbor.String(fmt.Sprint(i))}
		}
		return p.contentType(), cbor.Encode(cbor.Map{"FailedRecordCount": cbor.Uint(0), "Records": l})
	}
	var b strings.Builder
	b.WriteString(`{"FailedRecordCount":0,"Records":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"ShardId":"shardId-000000000000","SequenceNumber":"%d"}`, i)
	}
	b.WriteString(`]}`)
	return p.contentType(), []byte(b.String())
}

// verifySignature re-signs what the server received, with the hash of the body it received,
// and reports whether the client's Authorization header is that signature.
func verifySignature(r *http.Request, body []byte, creds aws.Credentials, service string) error {
	auth := r.Header.Get("Authorization")
	_, signed, ok := strings.Cut(auth, "SignedHeaders=")
	if !ok {
		return fmt.Errorf("no SignedHeaders in %q", auth)
	}
	signed, _, _ = strings.Cut(signed, ",")
	for _, h := range []string{"content-type", "host", "x-amz-date", "x-amz-target"} {
		if !strings.Contains(";"+signed+";", ";"+h+";") {
			return fmt.Errorf("%s is not signed: %s", h, signed)
		}
	}
	req, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	for _, h := range strings.Split(signed, ";") {
		if h != "host" && h != "content-length" {
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	req.ContentLength = int64(len(body))
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, "us-east-1", when); err != nil {
		return err
	}
	if got := req.Header.Get("Authorization"); got != auth {
		return fmt.Errorf("signature mismatch:\n got %s\nwant %s", auth, got)
	}
	return nil
}

// The request is signed over the bytes that were sent (the payload hash computed while
// encoding is the hash of the body on the wire), with the session token, and carries the
// protocol's content type and target; the answer is decoded into the SDK's output.
func TestSignedRequest(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", SessionToken: "token"}
	for _, p := range []Protocol{CBOR, JSON} {
		t.Run(p.String(), func(t *testing.T) {
			var requests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				body, _ := io.ReadAll(r.Body)
				if err := verifySignature(r, body, creds, "kinesis"); err != nil {
					t.Error(err)
				}
				if r.Header.Get("X-Amz-Security-Token") != "token" {
					t.Error("no session token")
				}
				if ct := r.Header.Get("Content-Type"); ct != p.contentType() || r.Header.Get("X-Amz-Target") != target {
					t.Errorf("content type %q, target %q", ct, r.Header.Get("X-Amz-Target"))
				}
				if int64(len(body)) != r.ContentLength {
					t.Errorf("body of %d bytes, Content-Length %d", len(body), r.ContentLength)
				}
				ct, ans := okAnswer(p, 57)
				w.Header().Set("Content-Type", ct)
				_, _ = w.Write(ans)
			}))
			defer srv.Close()
			cfg := testConfig(t, srv.URL)
			cfg.Credentials = credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)
			c, err := New(context.Background(), cfg, Options{Protocol: p})
			if err != nil {
				t.Fatal(err)
			}
			in := testInput(57, rand.New(rand.NewPCG(7, 8)))
			out, err := c.PutRecords(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Records) != 57 || aws.ToString(out.Records[56].SequenceNumber) != "56" || aws.ToInt32(out.FailedRecordCount) != 0 {
				t.Errorf("output: %d records, failed %v", len(out.Records), out.FailedRecordCount)
			}
			if requests.Load() != 1 {
				t.Errorf("%d requests", requests.Load())
			}
		})
	}
}

// The client never retries: a 500 and a dropped connection each cost exactly one request,
// and the shipper sees the failure.
func TestNoRetries(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		if n == 1 {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(500)
			_, _ = w.Write([]byte(`{"__type":"InternalFailure","message":"boom"}`))
			return
		}
		conn, _, _ := w.(http.Hijacker).Hijack()
		_ = conn.Close()
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, JSON)
	in := testInput(3, rand.New(rand.NewPCG(1, 1)))
	for i := 1; i <= 2; i++ {
		if _, err := c.PutRecords(context.Background(), in); err == nil {
			t.Fatalf("request %d succeeded", i)
		}
		if n := requests.Load(); n != int32(i) {
			t.Fatalf("after %d calls the server saw %d requests", i, n)
		}
	}
}

// Request buffers are bounded by the requests in flight, not by the input: many requests of
// up to 5 MiB, 8 at a time, leave at most MaxInFlight bodies' worth held afterwards, and
// more rounds hold no more.
func TestBufferBytesBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n := bytes.Count(body, []byte("PartitionKey"))
		ct, ans := okAnswer(JSON, n)
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write(ans)
	}))
	defer srv.Close()
	const maxInFlight = 4
	c, err := New(context.Background(), testConfig(t, srv.URL), Options{Protocol: JSON, MaxInFlight: maxInFlight})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<20)
	// The largest body: 5 records of 1 MiB in base64, plus framing and the segment list.
	maxBody := int64(5*(4<<20)/3 + 64<<10)
	var after []int64
	for round := range 3 {
		var wg sync.WaitGroup
		var peak atomic.Int64
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rnd := rand.New(rand.NewPCG(uint64(round), uint64(g)))
				for range 5 {
					in := &kinesis.PutRecordsInput{StreamName: aws.String("s")}
					for range 1 + rnd.IntN(5) {
						in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: data[:rnd.IntN(len(data))], PartitionKey: aws.String("k")})
					}
					if _, err := c.PutRecords(context.Background(), in); err != nil {
						t.Error(err)
						return
					}
					if h := c.BufferBytes(); h > peak.Load() {
						peak.Store(h)
					}
				}
			}()
		}
		wg.Wait()
		if p := peak.Load(); p > 8*maxBody {
			t.Errorf("round %d: %d bytes held at peak with 8 requests in flight, bound %d", round, p, 8*maxBody)
		}
		after = append(after, c.BufferBytes())
		if a := after[round]; a > maxInFlight*maxBody || a <= 0 {
			t.Errorf("round %d: %d bytes held when idle, want (0, %d]", round, a, maxInFlight*maxBody)
		}
	}
	if after[2] > after[0]+maxBody {
		t.Errorf("held bytes grow with use: %v", after)
	}
}

// A request whose context ends while the transport still holds its body is not reused
// (the pool forgets it), and the error is the context's.
func TestCanceledRequest(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	c := newTestClient(t, srv.URL, CBOR)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.PutRecords(ctx, testInput(3, rand.New(rand.NewPCG(1, 1))))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
}

func TestErrorKeepsStatusAndRequestID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amzn-RequestId", "req-1")
		w.Header().Set("X-Amzn-ErrorType", "ProvisionedThroughputExceededException")
		w.Header().Set("Content-Type", CBOR.contentType())
		w.WriteHeader(400)
	}))
	defer srv.Close()
	_, err := newTestClient(t, srv.URL, CBOR).PutRecords(context.Background(), testInput(1, rand.New(rand.NewPCG(1, 1))))
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.RequestID != "req-1" || re.HTTPStatusCode() != 400 {
		t.Fatalf("err = %#v", err)
	}
	var coded interface{ ErrorCode() string }
	if !errors.As(err, &coded) || coded.ErrorCode() != "ProvisionedThroughputExceededException" {
		t.Errorf("a CBOR error with an empty body and a type header lost its code: %v", err)
	}
}
