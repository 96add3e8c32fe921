package shipper

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/internal/jsonstr"
	"github.com/kinship-agent/kinship/internal/redact"
)

// HTTPOptions configure an HTTP destination. Zero values take the defaults in brackets.
type HTTPOptions struct {
	URL         string
	Format      string            // "ndjson": one {"line": "..."} object per line; "raw": the lines ["ndjson"]
	Compression string            // "none", "gzip" or "zstd" ["none"]
	Headers     map[string]string // sent with every request (Authorization, say); never logged
	Timeout     time.Duration     // one POST attempt, response included [30s]
	TLS         *tls.Config       // nil: the system roots
	Limits      Limits            // request bounds; zero fields take the Kinesis defaults
	// RetryWaitMin and RetryWaitMax bound go-retryablehttp's wait before its one retry
	// [100ms, 1s]; tests shorten them.
	RetryWaitMin, RetryWaitMax time.Duration
	// InvalidUTF8 counts the lines an accepted ndjson request carried with bytes that are not
	// UTF-8 (sent with U+FFFD in their place: JSON strings cannot hold them) [not counted];
	// Logger says so, at most once a minute [discard].
	InvalidUTF8 prometheus.Counter
	Logger      *slog.Logger
}

// HTTPRetryMax is how many times go-retryablehttp retries one POST (a dropped keep-alive
// connection, a 503 from a restarting receiver), with a short wait. The shipper retries
// every failed request again with its own capped exponential backoff, so attempts are at
// most (HTTPRetryMax+1) times the shipper's and the long waits happen in one place only.
const HTTPRetryMax = 1

// HTTP is a Destination that POSTs each batch of records to a URL as newline-delimited
// lines: the lines of every record are unpacked (see Firehose for why) and written as NDJSON
// objects {"line": "..."} or as raw lines, each ended by "\n" (unless it kept its own),
// optionally compressed
// (Content-Encoding gzip or zstd). A 2xx answer accepts the whole batch; 429 is throttling
// and 5xx transient (retried soon); 401/403 and any other answer are configuration-level
// (retried slowly, logged), since a receiver cannot reject single lines.
type HTTP struct {
	opts   HTTPOptions
	shown  string       // opts.URL as errors print it: without a password or query values
	warned atomic.Int64 // unix seconds of the last invalid UTF-8 warning
	client *retryablehttp.Client
	ctype  string
	bufs   sync.Pool // *bytes.Buffer for bodies
	zstd   *zstd.Encoder
}

var _ Destination = (*HTTP)(nil)

// NewHTTP returns an HTTP destination. It fails on an unknown format or compression.
func NewHTTP(opts HTTPOptions) (*HTTP, error) {
	if opts.Format == "" {
		opts.Format = "ndjson"
	}
	if opts.Compression == "" {
		opts.Compression = "none"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.RetryWaitMin <= 0 {
		opts.RetryWaitMin = 100 * time.Millisecond
	}
	if opts.RetryWaitMax < opts.RetryWaitMin {
		opts.RetryWaitMax = max(time.Second, opts.RetryWaitMin)
	}
	opts.Limits = opts.Limits.WithDefaults()
	if opts.InvalidUTF8 == nil {
		opts.InvalidUTF8 = prometheus.NewCounter(prometheus.CounterOpts{Name: "unexported"})
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &HTTP{opts: opts, shown: redact.URL(opts.URL)}
	switch opts.Format {
	case "ndjson":
		h.ctype = "application/x-ndjson"
	case "raw":
		h.ctype = "text/plain; charset=utf-8"
	default:
		return nil, fmt.Errorf("shipper: http: format %q: must be ndjson or raw", opts.Format)
	}
	switch opts.Compression {
	case "none", "gzip":
	case "zstd":
		// One encoder for all requests: EncodeAll is safe for concurrent use.
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("shipper: http: zstd: %w", err)
		}
		h.zstd = enc
	default:
		return nil, fmt.Errorf("shipper: http: compression %q: must be none, gzip or zstd", opts.Compression)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = opts.TLS
	tr.MaxIdleConnsPerHost = 16 // the shipper keeps several requests in flight to one host
	h.client = &retryablehttp.Client{
		HTTPClient:   &http.Client{Transport: tr, Timeout: opts.Timeout},
		Logger:       nil, // the shipper logs failures, rate-limited; a line per retry would not be
		RetryWaitMin: opts.RetryWaitMin,
		RetryWaitMax: opts.RetryWaitMax,
		RetryMax:     HTTPRetryMax,
		CheckRetry:   retryablehttp.DefaultRetryPolicy,
		Backoff: func(lo, hi time.Duration, n int, resp *http.Response) time.Duration {
			// DefaultBackoff follows Retry-After without a cap; a long wait belongs to the
			// shipper's backoff, which the context and the request timeout also bound.
			return min(retryablehttp.DefaultBackoff(lo, hi, n, resp), hi)
		},
		// The last response comes back as it is, so that its status picks the error class.
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	return h, nil
}

// Limits returns the configured request bounds.
func (h *HTTP) Limits() Limits { return h.opts.Limits }

// HTTPError is a POST answered with a status other than 2xx.
type HTTPError struct {
	URL    string
	Status int
	Body   string // the start of the answer, for the log
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("POST %s: %d %s: %s", e.URL, e.Status, http.StatusText(e.Status), e.Body)
}

// HTTPStatusCode lets Classify pick the class (see classifyHTTP).
func (e *HTTPError) HTTPStatusCode() int { return e.Status }

// Put POSTs the lines of recs in one request.
func (h *HTTP) Put(ctx context.Context, recs []Record) ([]error, error) {
	body, _ := h.bufs.Get().(*bytes.Buffer)
	if body == nil {
		body = new(bytes.Buffer)
	}
	defer func() {
		if body.Cap() <= 2*h.opts.Limits.MaxRequestBytes { // do not keep an outlier's buffer
			body.Reset()
			h.bufs.Put(body)
		}
	}()
	body.Reset()
	payload, invalid, err := h.encode(body, recs)
	if err != nil {
		return nil, fmt.Errorf("shipper: http %s: encode: %w", h.shown, err)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, h.opts.URL, payload)
	if err != nil {
		return nil, fmt.Errorf("shipper: http %s: %w", h.shown, redactURLError(err, h.shown))
	}
	req.Header.Set("Content-Type", h.ctype)
	req.Header.Set("User-Agent", "kinship")
	for k, v := range h.opts.Headers {
		req.Header.Set(k, v)
	}
	if h.opts.Compression != "none" {
		req.Header.Set("Content-Encoding", h.opts.Compression) // after Headers: it must match the body
	}
	resp, err := h.client.Do(req)
	if err != nil {
		if resp != nil {
			_ = resp.Body.Close()
		}
		return nil, fmt.Errorf("shipper: http: %w", redactURLError(err, h.shown))
	}
	defer func() { _ = resp.Body.Close() }()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode/100 == 2 {
		h.countInvalid(invalid)
		return nil, nil
	}
	return nil, fmt.Errorf("shipper: http: %w", &HTTPError{URL: h.shown, Status: resp.StatusCode, Body: string(bytes.TrimSpace(snippet))})
}

// redactURLError makes net/http's *url.Error (`Post "URL": ...`) quote the URL as shown.
func redactURLError(err error, shown string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = shown
	}
	return err
}

// countInvalid counts the lines of an accepted request that were not UTF-8 (a retried request
// is counted once, when accepted) and says so at most once a minute.
func (h *HTTP) countInvalid(lines int) {
	if lines == 0 {
		return
	}
	h.opts.InvalidUTF8.Add(float64(lines))
	now := time.Now().Unix()
	if last := h.warned.Load(); now-last >= 60 && h.warned.CompareAndSwap(last, now) {
		h.opts.Logger.Warn("http: lines that are not UTF-8 were sent with U+FFFD in place of the bad bytes (ndjson strings cannot hold them); format: raw sends the bytes as read",
			"url", h.shown, "lines", lines)
	}
}

// encode writes the lines of recs to buf in the configured format and returns the body to
// send, compressed if so configured, and how many lines were not UTF-8 (ndjson replaces
// their bad bytes).
func (h *HTTP) encode(buf *bytes.Buffer, recs []Record) ([]byte, int, error) {
	var w io.Writer = buf
	var gz *gzip.Writer
	plain := buf
	switch h.opts.Compression {
	case "gzip":
		gz = gzip.NewWriter(buf)
		w = gz
	case "zstd":
		plain = new(bytes.Buffer) // compressed in one go below
		w = plain
	}
	var err error
	var scratch []byte // one line at a time, reused
	invalid := 0
	ndjson := h.opts.Format != "raw"
	for i := range recs {
		eachLine(&recs[i], func(line []byte) {
			if err != nil {
				return
			}
			if ndjson && !utf8.Valid(line) {
				invalid++
			}
			err = h.writeLine(w, line, &scratch)
		})
		if err != nil {
			return nil, 0, err
		}
	}
	switch h.opts.Compression {
	case "gzip":
		if err := gz.Close(); err != nil {
			return nil, 0, err
		}
	case "zstd":
		return h.zstd.EncodeAll(plain.Bytes(), buf.Bytes()[:0]), invalid, nil
	}
	return buf.Bytes(), invalid, nil
}

func (h *HTTP) writeLine(w io.Writer, line []byte, scratch *[]byte) error {
	b := (*scratch)[:0]
	if h.opts.Format == "raw" {
		b = append(b, line...)
		if !bytes.HasSuffix(line, []byte{'\n'}) {
			// A line that kept its '\n' (an agent.json flow's record) is not ended twice.
			b = append(b, '\n')
		}
	} else {
		b = append(jsonstr.Append(append(b, `{"line":`...), line), "}\n"...)
	}
	*scratch = b
	_, err := w.Write(b)
	return err
}
