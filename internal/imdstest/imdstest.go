// Package imdstest is a loopback EC2 instance metadata service for tests. Like the real
// IMDSv2 (with HttpTokens=required) it answers reads only with a session token obtained by
// a PUT, so a client that falls back to IMDSv1 gets 401s.
package imdstest

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

const token = "imdstest-token"

// Server is a running loopback IMDS.
type Server struct {
	URL          string
	TokenPuts    atomic.Int64 // PUT /latest/api/token requests
	Unauthorized atomic.Int64 // reads without a valid token
}

// Start serves instance id and region on loopback until the test ends.
func Start(t testing.TB, instanceID, region string) *Server {
	s := &Server{}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "missing ttl", http.StatusBadRequest)
			return
		}
		s.TokenPuts.Add(1)
		w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
		_, _ = w.Write([]byte(token))
	})
	read := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-aws-ec2-metadata-token") != token {
				s.Unauthorized.Add(1)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(body))
		}
	}
	mux.HandleFunc("GET /latest/meta-data/instance-id", read(instanceID))
	mux.HandleFunc("GET /latest/dynamic/instance-identity/document",
		read(`{"instanceId":"`+instanceID+`","region":"`+region+`","accountId":"123456789012"}`))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}
