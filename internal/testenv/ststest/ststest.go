// Package ststest is a loopback AWS Security Token Service for tests: it answers AssumeRole
// (the query protocol, XML answers) with fresh temporary credentials on every call and
// records who asked, so that tests can check which key signed the call, the role and session
// name it asked for, and how often the SDK refreshed. It also answers GetCallerIdentity with
// an identity named after the signing key.
package ststest

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Credentials are what one AssumeRole call issued.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
}

// Call is one AssumeRole request and its answer.
type Call struct {
	SignedBy        string // the access key id of the Authorization header
	RoleARN         string
	RoleSessionName string
	ExternalID      string
	DurationSeconds string
	At              time.Time // when the call arrived
	Issued          Credentials
}

// Server is a running loopback STS. Its URL is the endpoint to give the SDK
// (AWS_ENDPOINT_URL_STS).
type Server struct {
	URL string

	lifetime time.Duration
	mu       sync.Mutex
	calls    []Call
}

// Start serves AssumeRole on 127.0.0.1 until the test ends. Each call issues new credentials
// (ASIASTSTEST0001, ...) that expire lifetime after the call: a lifetime just above the
// client's refresh window makes it assume the role again soon, without waiting 15 minutes.
func Start(t testing.TB, lifetime time.Duration) *Server {
	s := &Server{lifetime: lifetime}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Calls returns the AssumeRole calls so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

type credentialsXML struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumeRoleResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleResponse"`
	Result  struct {
		Credentials     credentialsXML `xml:"Credentials"`
		AssumedRoleUser struct {
			Arn           string `xml:"Arn"`
			AssumedRoleID string `xml:"AssumedRoleId"`
		} `xml:"AssumedRoleUser"`
	} `xml:"AssumeRoleResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		stsError(w, http.StatusMethodNotAllowed, "InvalidAction", "only POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		stsError(w, http.StatusBadRequest, "MalformedQueryString", err.Error())
		return
	}
	action := r.PostForm.Get("Action")
	if action != "AssumeRole" && action != "GetCallerIdentity" {
		stsError(w, http.StatusBadRequest, "InvalidAction", fmt.Sprintf("ststest answers AssumeRole and GetCallerIdentity, not %q", action))
		return
	}
	_, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	signer, _, _ := strings.Cut(cred, "/")
	if !ok || signer == "" {
		stsError(w, http.StatusForbidden, "MissingAuthenticationToken", "request is not signed")
		return
	}
	if action == "GetCallerIdentity" {
		s.callerIdentity(w, signer)
		return
	}
	c := Call{
		SignedBy:        signer,
		RoleARN:         r.PostForm.Get("RoleArn"),
		RoleSessionName: r.PostForm.Get("RoleSessionName"),
		ExternalID:      r.PostForm.Get("ExternalId"),
		DurationSeconds: r.PostForm.Get("DurationSeconds"),
		At:              time.Now(),
	}
	if c.RoleARN == "" || c.RoleSessionName == "" {
		stsError(w, http.StatusBadRequest, "MissingParameter", "RoleArn and RoleSessionName are required")
		return
	}
	s.mu.Lock()
	n := len(s.calls) + 1
	c.Issued = Credentials{
		AccessKeyID:     fmt.Sprintf("ASIASTSTEST%04d", n),
		SecretAccessKey: fmt.Sprintf("ststest-secret-%04d-do-not-log", n),
		SessionToken:    fmt.Sprintf("ststest-session-token-%04d-do-not-log", n),
		Expiration:      c.At.Add(s.lifetime).UTC().Truncate(time.Second),
	}
	s.calls = append(s.calls, c)
	s.mu.Unlock()

	var out assumeRoleResponse
	out.Result.Credentials = credentialsXML{AccessKeyID: c.Issued.AccessKeyID, SecretAccessKey: c.Issued.SecretAccessKey,
		SessionToken: c.Issued.SessionToken, Expiration: c.Issued.Expiration.Format(time.RFC3339)}
	out.Result.AssumedRoleUser.Arn = c.RoleARN + "/" + c.RoleSessionName
	out.Result.AssumedRoleUser.AssumedRoleID = "AROASTSTEST:" + c.RoleSessionName
	out.RequestID = fmt.Sprintf("ststest-%d", n)
	b, err := xml.Marshal(out)
	if err != nil {
		stsError(w, http.StatusInternalServerError, "InternalFailure", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}

// RejectedKeyID is an access key id that GetCallerIdentity answers with
// InvalidClientTokenId, as STS does for a deleted or mistyped key.
const RejectedKeyID = "AKIASTSTESTREJECTED"

type callerIdentityResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ GetCallerIdentityResponse"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

// callerIdentity answers GetCallerIdentity (which needs no permission) with an identity named
// after the signing key: an assumed role for the keys this server issued, a user otherwise.
func (s *Server) callerIdentity(w http.ResponseWriter, signer string) {
	if signer == RejectedKeyID {
		stsError(w, http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
		return
	}
	var out callerIdentityResponse
	out.Result.Account = "123456789012"
	out.Result.UserID = signer
	out.Result.Arn = "arn:aws:iam::123456789012:user/" + signer
	for _, c := range s.Calls() {
		if c.Issued.AccessKeyID == signer {
			out.Result.Arn = "arn:aws:sts::123456789012:assumed-role/" + c.RoleARN[strings.LastIndex(c.RoleARN, "/")+1:] + "/" + c.RoleSessionName
		}
	}
	out.RequestID = "ststest-identity"
	b, err := xml.Marshal(out)
	if err != nil {
		stsError(w, http.StatusInternalServerError, "InternalFailure", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}

func stsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(msg))
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>ststest</RequestId></ErrorResponse>`, code, b.String())
}
