package supervisor

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/shipper"
	"github.com/prometheus/client_golang/prometheus"
)

// httpDestination builds the http destination of fc, reading its CA bundle now so that a
// missing or unreadable file fails the flow's start with a clear message.
func httpDestination(fc config.Flow, invalidUTF8 prometheus.Counter, log *slog.Logger) (shipper.Destination, error) {
	h := fc.HTTP
	var tc *tls.Config
	if h.TLS.CAFile != "" || h.TLS.InsecureSkipVerify {
		tc = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: h.TLS.InsecureSkipVerify} //nolint:gosec // the operator asked for it
		if h.TLS.CAFile != "" {
			pem, err := os.ReadFile(h.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("http destination: tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("http destination: tls.ca_file %s: no PEM certificate in it", h.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
	}
	// A record holds at most batch.max_bytes (data + partition key): the request limits
	// must let the largest one through.
	rec := max(shipper.DefaultMaxRecordBytes, int(fc.Batch.MaxBytes))
	d, err := shipper.NewHTTP(shipper.HTTPOptions{
		URL: h.URL, Format: h.Format, Compression: h.Compression, Headers: h.Headers,
		Timeout: h.Timeout.D(), TLS: tc, InvalidUTF8: invalidUTF8, Logger: log,
		Limits: shipper.Limits{MaxRecordBytes: rec, MaxRequestBytes: max(shipper.DefaultMaxRequestBytes, rec)},
	})
	if err != nil {
		return nil, fmt.Errorf("http destination: %w", err)
	}
	return d, nil
}
