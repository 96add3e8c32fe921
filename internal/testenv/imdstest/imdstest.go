// Package imdstest is a loopback EC2 instance metadata service for tests. Like the real
// IMDSv2 (with HttpTokens=required) it answers reads only with a session token obtained by
// a PUT, so a client that falls back to IMDSv1 gets 401s. With SetRole it also serves an
// instance role's temporary credentials, as EC2 does for an instance profile.
package imdstest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const token = "imdstest-token"

// Server is a running loopback IMDS.
type Server struct {
	URL             string
	TokenPuts       atomic.Int64 // PUT /latest/api/token requests
	Unauthorized    atomic.Int64 // reads without a valid token
	CredentialReads atomic.Int64 // reads of the role's credentials
	IdentityReads   atomic.Int64 // reads of the instance identity document

	mu       sync.Mutex
	roleName string
	creds    RoleCredentials
	identity map[string]string
	noDoc    bool
	tags     [][2]string // nil: tags are not allowed in the instance metadata
}

// SetIdentity sets fields of the instance identity document (privateIp, availabilityZone,
// instanceType, imageId, ...) on top of instanceId, region and accountId.
func (s *Server) SetIdentity(fields map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range fields {
		s.identity[k] = v
	}
}

// SetIdentityUnavailable makes the identity document answer 404 (as off EC2) while on.
func (s *Server) SetIdentityUnavailable(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noDoc = on
}

// SetTags serves the instance's tags, in this order, under meta-data/tags/instance, as EC2
// does for an instance that allows tags in its metadata. nil makes those paths 404 again.
func (s *Server) SetTags(tags [][2]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tags = tags
}

// RoleCredentials are the temporary credentials of the instance's role.
type RoleCredentials struct {
	AccessKeyID     string
	SecretAccessKey string
	Token           string
	Expiration      time.Time
}

// SetRole makes the instance's role name and serves c as its credentials from now on.
// Without it, the security-credentials paths answer 404 like an instance without a profile.
func (s *Server) SetRole(name string, c RoleCredentials) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roleName, s.creds = name, c
}

func (s *Server) role() (string, RoleCredentials) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roleName, s.creds
}

// Start serves instance id and region on loopback until the test ends.
func Start(t testing.TB, instanceID, region string) *Server {
	s := &Server{identity: map[string]string{"instanceId": instanceID, "region": region, "accountId": "123456789012"}}
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
	authorized := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("X-aws-ec2-metadata-token") != token {
			s.Unauthorized.Add(1)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return false
		}
		return true
	}
	read := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if authorized(w, r) {
				_, _ = w.Write([]byte(body))
			}
		}
	}
	mux.HandleFunc("GET /latest/meta-data/iam/security-credentials/", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		if name, _ := s.role(); name != "" {
			_, _ = w.Write([]byte(name))
			return
		}
		http.NotFound(w, r)
	})
	mux.HandleFunc("GET /latest/meta-data/iam/security-credentials/{role}", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		name, c := s.role()
		if name == "" || r.PathValue("role") != name {
			http.NotFound(w, r)
			return
		}
		s.CredentialReads.Add(1)
		b, _ := json.Marshal(map[string]string{
			"Code": "Success", "Type": "AWS-HMAC", "LastUpdated": time.Now().UTC().Format(time.RFC3339),
			"AccessKeyId": c.AccessKeyID, "SecretAccessKey": c.SecretAccessKey, "Token": c.Token,
			"Expiration": c.Expiration.UTC().Format(time.RFC3339),
		})
		_, _ = w.Write(b)
	})
	mux.HandleFunc("GET /latest/meta-data/instance-id", read(instanceID))
	mux.HandleFunc("GET /latest/dynamic/instance-identity/document", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		s.IdentityReads.Add(1)
		s.mu.Lock()
		noDoc := s.noDoc
		b, _ := json.Marshal(s.identity)
		s.mu.Unlock()
		if noDoc {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	})
	mux.HandleFunc("GET /latest/meta-data/tags/instance/{key...}", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		s.mu.Lock()
		tags := s.tags
		s.mu.Unlock()
		if tags == nil {
			http.NotFound(w, r)
			return
		}
		key := r.PathValue("key")
		var keys []string
		for _, kv := range tags {
			if key != "" && kv[0] == key {
				_, _ = w.Write([]byte(kv[1]))
				return
			}
			keys = append(keys, kv[0])
		}
		if key != "" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(strings.Join(keys, "\n")))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}
