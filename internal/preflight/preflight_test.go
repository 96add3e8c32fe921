package preflight

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/testenv/imdstest"
	"github.com/kinship-agent/kinship/internal/testenv/kinesalitetest"
	"github.com/kinship-agent/kinship/internal/testenv/ststest"
	"github.com/kinship-agent/kinship/internal/testenv/tmpfstest"
)

// nobody is the user the file tests check as: not root, so mode bits count.
var nobody = User{UID: 65534, GID: 65534}

// host is a throwaway host: a directory of logs, a state directory, inotify limits and a
// unit directory, all below one temporary directory that nobody may traverse.
type host struct {
	root, logs, state string
	sys               System
}

func newHost(t *testing.T) *host {
	t.Helper()
	root := t.TempDir()
	// t.TempDir's directories are 0700: open the path for the unprivileged user.
	for d := root; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h := &host{root: root, logs: filepath.Join(root, "logs"), state: filepath.Join(root, "state")}
	for _, d := range []string{h.logs, h.state, filepath.Join(root, "inotify"), filepath.Join(root, "units")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(h.state, int(nobody.UID), int(nobody.GID)); err != nil {
		t.Fatal(err)
	}
	h.sys = System{InotifyDir: filepath.Join(root, "inotify"), UnitDirs: []string{filepath.Join(root, "units")},
		SystemConf: filepath.Join(root, "system.conf")}
	h.limits(t, 8192, 128)
	return h
}

func (h *host) limits(t *testing.T, watches, instances int) {
	write(t, filepath.Join(h.sys.InotifyDir, "max_user_watches"), fmt.Sprintf("%d\n", watches), 0o644)
	write(t, filepath.Join(h.sys.InotifyDir, "max_user_instances"), fmt.Sprintf("%d\n", instances), 0o644)
}

func (h *host) unit(t *testing.T, body string) {
	write(t, filepath.Join(h.sys.UnitDirs[0], unitName), body, 0o644)
}

func write(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func (h *host) config(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("kinship.yaml", []byte("state_dir: "+h.state+"\n"+yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// awsEnv points the SDK at kinesalite and a loopback STS with dummy credentials.
func awsEnv(t *testing.T) (kinesisURL string) {
	t.Helper()
	kinesisURL = kinesalitetest.Start(t)
	for _, kv := range kinesalitetest.Env(kinesisURL) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ENDPOINT_URL_STS", ststest.Start(t, 0).URL)
	return kinesisURL
}

func run(t *testing.T, h *host, cfg *config.Config, u *User) Report {
	t.Helper()
	rep := Run(context.Background(), Options{Config: cfg, User: u, System: h.sys,
		AWS: func(ctx context.Context) (*Clients, error) { return NewClients(ctx, cfg.AWS) }})
	var b bytes.Buffer
	_ = rep.WriteText(&b)
	t.Logf("check:\n%s", b.String())
	return rep
}

// find returns the results of one check about subject (a substring; "" for any).
func find(rep Report, check, subject string) []Result {
	var out []Result
	for _, r := range rep.Results {
		if r.Check == check && strings.Contains(r.Subject, subject) {
			out = append(out, r)
		}
	}
	return out
}

func want(t *testing.T, rep Report, check, subject string, level Level, words ...string) Result {
	t.Helper()
	for _, r := range find(rep, check, subject) {
		if r.Level != level {
			continue
		}
		line := r.Message + "; " + r.Fix
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			return r
		}
	}
	t.Fatalf("no %s result for %s %q with %q", level, check, subject, words)
	return Result{}
}

func TestHealthyHostPasses(t *testing.T) {
	endpoint := awsEnv(t)
	kinesalitetest.CreateStream(t, endpoint, "app-logs", 2)
	h := newHost(t)
	write(t, filepath.Join(h.logs, "a.log"), "x\n", 0o644)
	write(t, filepath.Join(h.logs, "b.log"), "y\n", 0o640) // group-readable: nobody is not in the group
	if err := os.Chown(filepath.Join(h.logs, "b.log"), 0, 4242); err != nil {
		t.Fatal(err)
	}
	u := nobody
	u.Groups = []uint32{4242}
	h.unit(t, "[Service]\nUser=kinship\nLimitNOFILE=65536\nStateDirectory=kinship\n")
	cfg := h.config(t, fmt.Sprintf("flows:\n  - name: app\n    paths: [%s/*.log]\n    kinesis: {stream: app-logs}\n"+
		"  - name: keyed\n    paths: [%s/a.log]\n    kinesis: {stream: app-logs, partition_key_field: host}\n", h.logs, h.logs))
	rep := run(t, h, cfg, &u)
	if rep.Failed() {
		t.Fatal("a healthy host failed the check")
	}
	want(t, rep, "config", "", OK, "valid, 2 flows")
	want(t, rep, "credentials", "", Warn, "EnvConfigCredentials", "****************test")
	want(t, rep, "identity", "", OK, "arn:aws:iam::123456789012:user/kinshiptest")
	want(t, rep, "kinesis", "app-logs", OK, "ACTIVE, 2 open shards", "write permission not proven")
	want(t, rep, "kinesis", "app-logs", OK, "ListShards allowed (2 shards listed)")
	want(t, rep, "files", "*.log (flow app)", OK, "2 files in 1 directories, all readable (opened as uid 65534)")
	want(t, rep, "state_dir", h.state, OK, "writable by uid 65534")
	want(t, rep, "inotify", "", OK, "max_user_watches 8192")
	want(t, rep, "open_files", "", OK, "limit 65536 from the unit's LimitNOFILE")
	if n := len(find(rep, "kinesis", "app-logs")); n != 2 {
		t.Errorf("%d kinesis results for a stream two flows share, want one describe and one ListShards", n)
	}
}

func TestMissingStreamFails(t *testing.T) {
	awsEnv(t)
	h := newHost(t)
	write(t, filepath.Join(h.logs, "a.log"), "x\n", 0o644)
	cfg := h.config(t, fmt.Sprintf("flows:\n  - {name: app, paths: [%s/*.log], kinesis: {stream: nope}}\n", h.logs))
	rep := run(t, h, cfg, &nobody)
	want(t, rep, "kinesis", "nope", Fail, "stream does not exist in us-east-1", "fix kinesis.stream or aws.region")
	if !rep.Failed() {
		t.Error("Failed() = false")
	}
}

func TestRejectedCredentialsFail(t *testing.T) {
	awsEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", ststest.RejectedKeyID)
	h := newHost(t)
	write(t, filepath.Join(h.logs, "a.log"), "x\n", 0o644)
	cfg := h.config(t, fmt.Sprintf("flows:\n  - {name: app, paths: [%s/*.log], kinesis: {stream: s}}\n", h.logs))
	rep := run(t, h, cfg, &nobody)
	want(t, rep, "identity", "", Fail, "STS rejected the credentials", "InvalidClientTokenId")
}

func TestNoCredentialsFail(t *testing.T) {
	awsEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	h := newHost(t)
	cfg := h.config(t, fmt.Sprintf("flows:\n  - {name: app, paths: [%s/*.log], kinesis: {stream: s}}\n", h.logs))
	rep := run(t, h, cfg, &nobody)
	want(t, rep, "credentials", "", Fail, "found none", "instance role")
	if len(find(rep, "kinesis", "")) != 0 {
		t.Error("streams were checked without credentials")
	}
}

func TestUnreadableFileFails(t *testing.T) {
	h := newHost(t)
	write(t, filepath.Join(h.logs, "open.log"), "x\n", 0o644)
	write(t, filepath.Join(h.logs, "secret.log"), "x\n", 0o600) // root's alone
	cfg := h.config(t, fmt.Sprintf("flows:\n  - {name: app, paths: [%s/*.log], discard: {}}\n", h.logs))
	rep := run(t, h, cfg, &nobody)
	want(t, rep, "files", "flow app", Fail, "1 of 2 files not readable by uid 65534", "secret.log", "setfacl -m u:65534:r")
	// Root reads everything: the check really runs as the user it names.
	root, err := LookupUser("0")
	if err != nil {
		t.Fatal(err)
	}
	rep = run(t, h, cfg, &root)
	want(t, rep, "files", "flow app", OK, "2 files in 1 directories, all readable")
	want(t, rep, "files", "", Warn, "checked as root", "--as-user")
}

// An ACL grants what the mode bits refuse: only the kernel's own answer sees it.
func TestACLIsHonoured(t *testing.T) {
	h := newHost(t)
	p := filepath.Join(h.logs, "acl.log")
	write(t, p, "x\n", 0o600)
	// system.posix_acl_access: version 2; user_obj rw, user 65534 r, mask r, group none, other none.
	acl := []byte{2, 0, 0, 0,
		1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
		2, 0, 4, 0, 0xfe, 0xff, 0, 0,
		4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
		0x10, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
		0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}
	if err := syscall.Setxattr(p, "system.posix_acl_access", acl, 0); err != nil {
		t.Fatalf("setting an ACL on %s: %v", p, err)
	}
	cfg := h.config(t, fmt.Sprintf("flows:\n  - {name: app, paths: [%s], discard: {}}\n", p))
	rep := run(t, h, cfg, &nobody)
	want(t, rep, "files", "flow app", OK, "1 files in 1 directories, all readable (opened as uid 65534)")
}

func TestUnlistableDirectoryFails(t *testing.T) {
	h := newHost(t)
	dir := filepath.Join(h.logs, "app")
	if err := os.Mkdir(dir, 0o711); err != nil { // search, no read: files are reachable, not listable
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "a.log"), "x\n", 0o644)
	cfg := h.config(t, fmt.Sprintf("flows:\n  - {name: app, paths: [%s/*.log], discard: {}}\n", dir))
	rep := run(t, h, cfg, &nobody)
	want(t, rep, "files", "flow app", Fail, "cannot list", "files created there later will not be found")
}

func TestPatternMatchingNothingFails(t *testing.T) {
	h := newHost(t)
	write(t, filepath.Join(h.logs, "a.log.gz"), "x\n", 0o644)
	cfg := h.config(t, fmt.Sprintf("flows:\n  - {name: app, paths: [%s/*.log, %s/*.gz], exclude: ['*.gz'], discard: {}}\n", h.logs, h.logs))
	rep := run(t, h, cfg, &nobody)
	want(t, rep, "files", "/*.log (flow app)", Fail, "matches no file now")
	want(t, rep, "files", "/*.gz (flow app)", Fail, "matches no file now", "exclude")
}

func TestPrivateTmpHidesTmp(t *testing.T) {
	h := newHost(t)
	h.unit(t, "[Service]\nPrivateTmp=yes\n")
	cfg := h.config(t, "flows:\n  - {name: app, paths: [/tmp/app/*.log], discard: {}}\n")
	rep := run(t, h, cfg, &nobody)
	want(t, rep, "files", "/tmp/app/*.log", Fail, "PrivateTmp=yes", "PrivateTmp=no")
}

func TestStateDirNotWritableFails(t *testing.T) {
	h := newHost(t)
	if err := os.Chown(h.state, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(h.state, 0o555); err != nil {
		t.Fatal(err)
	}
	cfg := h.config(t, "flows:\n  - {name: app, paths: [/x/*.log], discard: {}}\n")
	rep := run(t, h, cfg, &nobody)
	want(t, rep, "state_dir", h.state, Fail, "not writable by uid 65534", "chown -R 65534 ")
}

func TestStateDirOnReadOnlyFileSystemFails(t *testing.T) {
	h := newHost(t)
	dir := tmpfstest.Mount(t, 1<<20)
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount %s read-only: %v", dir, err)
	}
	cfg, err := config.Parse("k.yaml", []byte("state_dir: "+dir+"\nflows:\n  - {name: app, paths: [/x/*.log], discard: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	root := CurrentUser()
	rep := run(t, h, cfg, &root)
	want(t, rep, "state_dir", dir, Fail, "read-only file system (on tmpfs")
}

func TestStateDirOnTmpfsWarns(t *testing.T) {
	h := newHost(t)
	dir := tmpfstest.Mount(t, 1<<20)
	cfg, err := config.Parse("k.yaml", []byte("state_dir: "+dir+"\nflows:\n  - {name: app, paths: [/x/*.log], discard: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	root := CurrentUser()
	rep := run(t, h, cfg, &root)
	want(t, rep, "state_dir", dir, Warn, "on tmpfs, 1.0 MiB free", "lost at reboot")
}

func TestStateDirOutsideProtectSystemFails(t *testing.T) {
	h := newHost(t)
	h.unit(t, "[Service]\nProtectSystem=strict\nStateDirectory=kinship\n")
	cfg := h.config(t, "flows:\n  - {name: app, paths: [/x/*.log], discard: {}}\n")
	rep := run(t, h, cfg, &nobody)
	want(t, rep, "state_dir", h.state, Fail, "ProtectSystem=strict", "ReadWritePaths="+h.state)
	// A drop-in that opens it is honoured.
	if err := os.MkdirAll(filepath.Join(h.sys.UnitDirs[0], unitName+".d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(h.sys.UnitDirs[0], unitName+".d", "state.conf"), "[Service]\nReadWritePaths="+h.state+"\n", 0o644)
	rep = run(t, h, cfg, &nobody)
	want(t, rep, "state_dir", h.state, OK, "writable")
}

func TestOpenFileLimitFails(t *testing.T) {
	h := newHost(t)
	for i := range 20 {
		write(t, filepath.Join(h.logs, fmt.Sprintf("%02d.log", i)), "x\n", 0o644)
	}
	h.unit(t, "[Service]\nLimitNOFILE=64:80\n")
	cfg := h.config(t, fmt.Sprintf("flows:\n  - {name: app, paths: [%s/*.log], discard: {}}\n", h.logs))
	rep := run(t, h, cfg, &nobody)
	want(t, rep, "open_files", "", Fail, "about 92 descriptors needed (20 files matched now, 1 flows); limit 80 from the unit's LimitNOFILE", "LimitNOFILE=184")
	// Without LimitNOFILE, systemd's default (or system.conf's) applies.
	h.unit(t, "[Service]\n")
	write(t, h.sys.SystemConf, "[Manager]\nDefaultLimitNOFILE=1024:4096\n", 0o644)
	rep = run(t, h, cfg, &nobody)
	want(t, rep, "open_files", "", OK, "limit 4096 from DefaultLimitNOFILE=1024:4096")
}

func TestInotifyLimitsWarn(t *testing.T) {
	h := newHost(t)
	for _, d := range []string{"a", "b/c"} {
		if err := os.MkdirAll(filepath.Join(h.logs, d), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(h.logs, d, "x.log"), "x\n", 0o644)
	}
	h.limits(t, 3, 128)
	cfg := h.config(t, fmt.Sprintf("flows:\n  - {name: app, paths: ['%s/**/*.log'], discard: {}}\n", h.logs))
	rep := run(t, h, cfg, &nobody)
	want(t, rep, "inotify", "", Warn, "4 directories to watch", "fs.inotify.max_user_watches=8")
	h.limits(t, 8192, 0)
	rep = run(t, h, cfg, &nobody)
	want(t, rep, "inotify", "", Warn, "max_user_instances 0", "fs.inotify.max_user_instances=2")
}

// fakeFirehose answers DescribeDeliveryStream for the names it knows.
func fakeFirehose(t *testing.T, streams map[string]string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ DeliveryStreamName string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if r.Header.Get("X-Amz-Target") != "Firehose_20150804.DescribeDeliveryStream" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"__type":"InvalidArgumentException","message":"unexpected call"}`)
			return
		}
		typ, ok := streams[in.DeliveryStreamName]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"__type":"ResourceNotFoundException","message":"Firehose %s under account 123456789012 not found."}`, in.DeliveryStreamName)
			return
		}
		fmt.Fprintf(w, `{"DeliveryStreamDescription":{"DeliveryStreamName":%q,"DeliveryStreamARN":"arn:aws:firehose:us-east-1:123456789012:deliverystream/%s",`+
			`"DeliveryStreamStatus":"ACTIVE","DeliveryStreamType":%q,"VersionId":"1","Destinations":[],"HasMoreDestinations":false}}`,
			in.DeliveryStreamName, in.DeliveryStreamName, typ)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestFirehose(t *testing.T) {
	awsEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_FIREHOSE", fakeFirehose(t, map[string]string{"direct": "DirectPut", "fromkinesis": "KinesisStreamAsSource"}))
	h := newHost(t)
	write(t, filepath.Join(h.logs, "a.log"), "x\n", 0o644)
	cfg := h.config(t, fmt.Sprintf("flows:\n"+
		"  - {name: a, paths: [%[1]s/a.log], firehose: {delivery_stream: direct}}\n"+
		"  - {name: b, paths: [%[1]s/a.log], firehose: {delivery_stream: fromkinesis}}\n"+
		"  - {name: c, paths: [%[1]s/a.log], firehose: {delivery_stream: missing}}\n", h.logs))
	rep := run(t, h, cfg, &nobody)
	want(t, rep, "firehose", "direct", OK, "ACTIVE, source DirectPut", "not proven")
	want(t, rep, "firehose", "fromkinesis", Fail, "refuses direct puts")
	want(t, rep, "firehose", "missing", Fail, "delivery stream does not exist")
}

func TestConfigFailures(t *testing.T) {
	_, err := config.Parse("k.yaml", []byte("flows:\n  - name: a\n    pathz: [x]\n"))
	if err == nil {
		t.Fatal("bad config parsed")
	}
	rep := ConfigFailures(err)
	if !rep.Failed() || len(rep.Results) != 3 || !strings.HasPrefix(rep.Results[2].Message, "k.yaml:3:5: unknown key \"pathz\"") {
		t.Errorf("results %+v, want FAIL lines with file:line", rep.Results)
	}
}

func TestOutputFormats(t *testing.T) {
	rep := Report{}
	rep.add(OK, "config", "", "valid, 1 flows", "")
	rep.add(Fail, "files", "/x/*.log (flow a)", "matches no file now", "check the path")
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	wantText := "ok   config: valid, 1 flows\nFAIL files /x/*.log (flow a): matches no file now; check the path\n"
	if b.String() != wantText {
		t.Errorf("text:\n%s\nwant:\n%s", b.String(), wantText)
	}
	b.Reset()
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		OK      bool
		Results []struct{ Level, Check, Subject, Message, Fix string }
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.OK || len(got.Results) != 2 || got.Results[1].Level != "FAIL" || got.Results[1].Fix != "check the path" {
		t.Errorf("json: %s", b.String())
	}
}

// The probe's borrowed identity never leaks to other goroutines: root can still read a
// root-only file everywhere after many probes as nobody.
func TestProbeDoesNotLeakIdentity(t *testing.T) {
	h := newHost(t)
	secret := filepath.Join(h.logs, "secret")
	write(t, secret, "x", 0o600)
	for range 50 {
		errs, exact := probe(nobody, []probeReq{{secret, probeRead}})
		if !exact || errs[0] == nil {
			t.Fatalf("probe as nobody: exact %v, err %v: want an exact refusal", exact, errs[0])
		}
	}
	done := make(chan error, 64)
	for range 64 {
		go func() {
			f, err := os.Open(secret)
			if err == nil {
				err = f.Close()
			}
			done <- err
		}()
	}
	for range 64 {
		if err := <-done; err != nil {
			t.Fatalf("root cannot read its own file after probes: %v", err)
		}
	}
}

// Without root, other users' access is approximated from mode bits, and said to be.
func TestModeBitsApproximation(t *testing.T) {
	h := newHost(t)
	p := filepath.Join(h.logs, "g.log")
	write(t, p, "x", 0o640)
	if err := os.Chown(p, 0, 4242); err != nil {
		t.Fatal(err)
	}
	in := nobody
	in.Groups = []uint32{4242}
	if err := modeAccess(in, probeReq{p, probeRead}); err != nil {
		t.Errorf("group member refused: %v", err)
	}
	if err := modeAccess(nobody, probeReq{p, probeRead}); err == nil {
		t.Error("non-member allowed")
	}
	if err := modeAccess(nobody, probeReq{h.state, probeCreate}); err != nil {
		t.Errorf("owner refused its own directory: %v", err)
	}
}

func TestLookupUser(t *testing.T) {
	u, err := LookupUser("65534:4242", "0")
	if err != nil {
		t.Fatal(err)
	}
	if u.UID != 65534 || u.GID != 4242 || !containsGID(u.Groups, 0) {
		t.Errorf("user %+v", u)
	}
	if _, err := LookupUser("no-such-user-kinship-test"); err == nil {
		t.Error("unknown user accepted")
	}
}

// On EC2 the chain finds the instance role: ok, temporary, and STS names the key's owner.
func TestInstanceRoleCredentials(t *testing.T) {
	endpoint := awsEnv(t)
	kinesalitetest.CreateStream(t, endpoint, "app-logs", 1)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
	imds := imdstest.Start(t, "i-0123456789abcdef0", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	imds.SetRole("kinship-instance", imdstest.RoleCredentials{AccessKeyID: "ASIAIMDSTEST0001",
		SecretAccessKey: "imds-secret-do-not-print", Token: "imds-token-do-not-print", Expiration: time.Now().Add(time.Hour)})
	h := newHost(t)
	write(t, filepath.Join(h.logs, "a.log"), "x\n", 0o644)
	cfg := h.config(t, fmt.Sprintf("flows:\n  - {name: app, paths: [%s/*.log], kinesis: {stream: app-logs}}\n", h.logs))
	rep := run(t, h, cfg, &nobody)
	want(t, rep, "credentials", "", OK, "the EC2 instance role", "EC2RoleProvider", "****************0001", "temporary, expires")
	want(t, rep, "identity", "", OK, "user/ASIAIMDSTEST0001")
	want(t, rep, "kinesis", "app-logs", OK, "ACTIVE, 1 open shards")
	noSecrets(t, rep, "imds-secret-do-not-print", "imds-token-do-not-print")
}

// With aws.role_arn the agent assumes the role: check does too, and STS names the role.
func TestAssumedRoleCredentials(t *testing.T) {
	awsEnv(t)
	h := newHost(t)
	write(t, filepath.Join(h.logs, "a.log"), "x\n", 0o644)
	cfg := h.config(t, fmt.Sprintf("aws: {role_arn: 'arn:aws:iam::123456789012:role/kinship-writer'}\n"+
		"flows:\n  - {name: app, paths: [%s/*.log], kinesis: {stream: app-logs}}\n", h.logs))
	rep := run(t, h, cfg, &nobody)
	want(t, rep, "credentials", "", OK, "aws.role_arn, assumed through STS", "****************0001", "temporary")
	want(t, rep, "identity", "", OK, "arn:aws:sts::123456789012:assumed-role/kinship-writer/kinship")
	want(t, rep, "kinesis", "app-logs", Fail, "stream does not exist")
	noSecrets(t, rep, "ststest-secret-0001-do-not-log", "ststest-session-token-0001-do-not-log")
}

func noSecrets(t *testing.T, rep Report, secrets ...string) {
	t.Helper()
	var b bytes.Buffer
	_ = rep.WriteJSON(&b)
	for _, s := range secrets {
		if strings.Contains(b.String(), s) {
			t.Errorf("the report shows a secret (%s):\n%s", s, b.String())
		}
	}
}

func TestWatchedDirs(t *testing.T) {
	h := newHost(t)
	// A directory that does not exist yet is watched through its nearest existing ancestor.
	got := watchedDirs(filepath.Join(h.logs, "later", "app", "*.log"), nil)
	if len(got) != 1 || !got[h.logs] {
		t.Errorf("watchedDirs of a pattern below a missing directory = %v, want only %s", got, h.logs)
	}
	sub := filepath.Join(h.logs, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	got = watchedDirs(filepath.Join(h.logs, "*", "b", "*.log"), []string{filepath.Join(sub, "x.log")})
	if len(got) != 3 || !got[h.logs] || !got[filepath.Join(h.logs, "a")] || !got[sub] {
		t.Errorf("watchedDirs = %v, want the base and every directory down to the match", got)
	}
}
