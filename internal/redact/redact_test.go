package redact

import (
	"strings"
	"testing"
)

func TestURLHidesPasswordAndQueryValues(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://logs.example.com/ingest", "https://logs.example.com/ingest"},
		{"https://logs.example.com/ingest?token=s3cret", "https://logs.example.com/ingest?token=xxxxx"},
		{"https://logs.example.com/i?b=2&a=s3cret&a=more", "https://logs.example.com/i?b=xxxxx&a=xxxxx&a=xxxxx"},
		{"https://user:s3cret@logs.example.com/ingest", "https://user:xxxxx@logs.example.com/ingest"},
		{"https://user@logs.example.com/", "https://user@logs.example.com/"},
		{"https://logs.example.com/?s3cret", "https://logs.example.com/?xxxxx"},
		{"http://127.0.0.1:4567", "http://127.0.0.1:4567"},
		{"not a url\x7f?token=s3cret", "not a url\x7f?token=xxxxx"},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Errors quote URLs (net/http: `Post "https://...?token=...": dial tcp ...`).
func TestTextHidesURLsInsideMessages(t *testing.T) {
	in := `shipper: http: Post "https://u:pw1@logs.example.com/ingest?token=s3cret&x=1": dial tcp 10.0.0.1:443: connection refused; see http://a/b?sig=abc`
	got := Text(in)
	for _, secret := range []string{"pw1", "s3cret", "sig=abc", "x=1"} {
		if strings.Contains(got, secret) {
			t.Errorf("%q still holds %q", got, secret)
		}
	}
	for _, kept := range []string{"logs.example.com/ingest", "token=xxxxx", "connection refused", "http://a/b?sig=xxxxx"} {
		if !strings.Contains(got, kept) {
			t.Errorf("%q lost %q", got, kept)
		}
	}
	if s := "no url here: 12:30?x"; Text(s) != s {
		t.Errorf("Text(%q) = %q", s, Text(s))
	}
}
