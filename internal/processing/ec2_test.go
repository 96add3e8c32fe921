package processing

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/kinship-agent/kinship/internal/testenv/imdstest"
)

func imdsClient(srv *imdstest.Server) *imds.Client {
	return imds.New(imds.Options{Endpoint: srv.URL, ClientEnableState: imds.ClientEnabled})
}

// fakeIMDS is a loopback IMDSv2 with a full identity document.
func fakeIMDS(t testing.TB) *imds.Client {
	return imdsClient(startIMDS(t))
}

func startIMDS(t testing.TB) *imdstest.Server {
	t.Helper()
	srv := imdstest.Start(t, "i-0123456789abcdef0", "eu-west-1")
	srv.SetIdentity(map[string]string{"privateIp": "10.1.2.3", "availabilityZone": "eu-west-1b",
		"instanceType": "m7g.large", "imageId": "ami-0abc"})
	return srv
}

// clock is a settable Deps.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestAddEC2Metadata(t *testing.T) {
	srv := startIMDS(t)
	srv.SetTags([][2]string{{"Name", "web-1"}, {"Team", "payments"}})
	clk := &clock{t: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	chain, err := New([]Options{{Name: AddEC2Metadata, LogFormat: "COMMONAPACHELOG", MetadataTTL: 10 * time.Minute}},
		Deps{IMDS: imdsClient(srv), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	process := func(in string) (string, bool, error) {
		out, skip, err := chain.Process(nil, []byte(in))
		return string(out), skip, err
	}

	const meta = `"privateIp":"10.1.2.3","availabilityZone":"eu-west-1b","instanceId":"i-0123456789abcdef0","instanceType":"m7g.large","accountId":"123456789012","amiId":"ami-0abc","region":"eu-west-1"`
	got, skip, err := process(`{"msg":"hi","n":1.50,"region":"x","nested":{"a":[1,"b"]}}` + "\n")
	want := `{"msg":"hi","n":1.5,"region":"eu-west-1","nested":{"a":[1,"b"]},` +
		`"privateIp":"10.1.2.3","availabilityZone":"eu-west-1b","instanceId":"i-0123456789abcdef0","instanceType":"m7g.large","accountId":"123456789012","amiId":"ami-0abc",` +
		`"metadataTimestamp":"2026-12-07T09:00:00+0000","tags":{"name":"web-1","team":"payments"}}` + "\n"
	if err != nil || skip || got != want {
		t.Fatalf("got %q, %v, %v\nwant %q", got, skip, err, want)
	}

	// Not a JSON object: an error, so the caller ships the raw record.
	for _, in := range []string{"plain text\n", "[1]\n", "null\n", "\n"} {
		if _, _, err := process(in); err == nil {
			t.Errorf("%q: want an error", in)
		}
	}

	// Within the TTL nothing is fetched again; after it, the metadata is refreshed.
	reads := srv.IdentityReads.Load()
	clk.t = clk.t.Add(10 * time.Minute)
	process("{}")
	if srv.IdentityReads.Load() != reads {
		t.Fatalf("identity read again within the TTL")
	}
	srv.SetTags(nil) // tags no longer allowed in the metadata: "tags" is left out
	clk.t = clk.t.Add(time.Second)
	got, _, err = process("{}")
	if want := `{` + meta + `,"metadataTimestamp":"2026-12-07T09:10:01+0000"}` + "\n"; err != nil || got != want {
		t.Fatalf("after refresh got %q, %v\nwant %q", got, err, want)
	}
	if srv.IdentityReads.Load() != reads+1 {
		t.Fatalf("identity reads %d, want %d", srv.IdentityReads.Load(), reads+1)
	}

	// Without an identity document records pass unchanged, not as errors, until the next
	// refresh succeeds.
	srv.SetIdentityUnavailable(true)
	clk.t = clk.t.Add(time.Hour)
	if got, skip, err := process("not json\n"); err != nil || skip || got != "not json\n" {
		t.Fatalf("without metadata got %q, %v, %v", got, skip, err)
	}
	srv.SetIdentityUnavailable(false)
	clk.t = clk.t.Add(11 * time.Minute)
	if got, _, err := process("{}"); err != nil || got == "{}" {
		t.Fatalf("after recovery got %q, %v", got, err)
	}
}

func TestAddEC2MetadataPretty(t *testing.T) {
	srv := startIMDS(t)
	srv.SetTags([][2]string{})
	chain, err := New([]Options{{Name: AddEC2Metadata, LogFormat: "SYSLOG", JSONFormat: "PRETTYPRINT"}},
		Deps{IMDS: imdsClient(srv), Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", -5*3600)) }})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := chain.Process(nil, []byte(`{"a":[]}`))
	want := "{\n  \"a\" : [ ],\n  \"privateIp\" : \"10.1.2.3\",\n  \"availabilityZone\" : \"eu-west-1b\",\n  \"instanceId\" : \"i-0123456789abcdef0\",\n" +
		"  \"instanceType\" : \"m7g.large\",\n  \"accountId\" : \"123456789012\",\n  \"amiId\" : \"ami-0abc\",\n  \"region\" : \"eu-west-1\",\n" +
		"  \"metadataTimestamp\" : \"2026-01-02T03:04:05-0500\",\n  \"tags\" : { }\n}\n"
	if err != nil || string(out) != want {
		t.Fatalf("got %q, %v\nwant %q", out, err, want)
	}
}

// Without Deps.IMDS the SDK's default client is used, with its environment settings.
func TestAddEC2MetadataDefaultClient(t *testing.T) {
	t.Run("disabled: records pass unchanged", func(t *testing.T) {
		t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		c, err := New([]Options{{Name: AddEC2Metadata, LogFormat: "SYSLOG"}}, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		out, skip, err := c.Process(nil, []byte(`{"a":"b"}`+"\n"))
		if err != nil || skip || string(out) != `{"a":"b"}`+"\n" {
			t.Fatalf("got %q, %v, %v", out, skip, err)
		}
	})
	t.Run("endpoint from the environment", func(t *testing.T) {
		srv := startIMDS(t)
		t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
		t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)
		c, err := New([]Options{{Name: AddEC2Metadata, LogFormat: "SYSLOG"}}, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := c.Process(nil, []byte(`{}`))
		if err != nil || !strings.Contains(string(out), `"instanceId":"i-0123456789abcdef0"`) || srv.Unauthorized.Load() != 0 {
			t.Fatalf("got %q, %v (unauthorized reads %d)", out, err, srv.Unauthorized.Load())
		}
	})
}
