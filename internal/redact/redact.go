// Package redact hides the secrets a URL may carry before it is printed: the password of its
// userinfo and the values of its query (`?token=...`, `?sig=...`). Every place that prints a
// URL, or an error that may quote one, goes through it: logs, /status, /healthz and
// `kinship status`.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces what is hidden.
const Mask = "xxxxx"

// URL returns raw with its userinfo password and every query value replaced by Mask; keys
// and the rest stay, so that the operator still sees which URL it is. A string that does not
// parse as a URL is returned with its query values masked as far as they can be found.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return maskQuery(raw)
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), Mask)
	}
	if u.RawQuery != "" {
		u.RawQuery = maskValues(u.RawQuery)
	}
	return u.String()
}

// maskValues masks each value of a raw query, keeping its keys and their order; a part
// without "=" may itself be the secret ("?s3cret").
func maskValues(rawQuery string) string {
	parts := strings.Split(rawQuery, "&")
	for i, p := range parts {
		if k, _, ok := strings.Cut(p, "="); ok {
			parts[i] = k + "=" + Mask
		} else if p != "" {
			parts[i] = Mask
		}
	}
	return strings.Join(parts, "&")
}

// urlInText finds URLs inside free text (error messages quote them, often in quotes).
var urlInText = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)

// Text returns s with every URL in it passed through URL.
func Text(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, URL)
}

func maskQuery(s string) string {
	i := strings.IndexByte(s, '?')
	if i < 0 {
		return s
	}
	return s[:i+1] + maskValues(s[i+1:])
}
