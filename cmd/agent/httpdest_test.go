package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// lineCounter counts the lines that reached a receiver.
type lineCounter struct {
	mu    sync.Mutex
	lines map[string]int
}

func (c *lineCounter) add(l string) {
	c.mu.Lock()
	c.lines[l]++
	c.mu.Unlock()
}

// `run --once` ships a file through the whole pipeline (aggregation, spool) to an http
// receiver (gzip, NDJSON) and to a Firehose delivery stream (PutRecordBatch on loopback):
// each receives every line once, as lines, not as KPL aggregates.
func TestRunOnceShipsToHTTPAndFirehose(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))

	web := &lineCounter{lines: map[string]int{}}
	httpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("X-Token") != "t0k" {
			http.Error(w, "bad headers", http.StatusBadRequest)
			return
		}
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sc := bufio.NewScanner(zr)
		for sc.Scan() {
			var obj struct{ Line string }
			if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
				t.Errorf("not NDJSON: %q", sc.Text())
			}
			web.add(obj.Line)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer httpSrv.Close()

	fh := &lineCounter{lines: map[string]int{}}
	fhSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			DeliveryStreamName string
			Records            []struct{ Data []byte }
		}
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Amz-Target") != "Firehose_20150804.PutRecordBatch" || json.Unmarshal(body, &in) != nil || in.DeliveryStreamName != "app-logs" {
			t.Errorf("unexpected request %s %q", r.Header.Get("X-Amz-Target"), body)
			http.Error(w, `{"__type":"ValidationException"}`, http.StatusBadRequest)
			return
		}
		var resps []string
		for _, rec := range in.Records {
			for _, l := range strings.Split(strings.TrimSuffix(string(rec.Data), "\n"), "\n") {
				fh.add(l)
			}
			resps = append(resps, `{"RecordId":"x"}`)
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		fmt.Fprintf(w, `{"FailedPutCount":0,"RequestResponses":[%s]}`, strings.Join(resps, ","))
	}))
	defer fhSrv.Close()

	dir := t.TempDir()
	logPath := filepath.Join(dir, "a.log")
	var want []string
	var sb strings.Builder
	for i := range 20000 {
		l := fmt.Sprintf("line %05d of the application log", i)
		want = append(want, l)
		sb.WriteString(l + "\n")
	}
	if err := os.WriteFile(logPath, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "kinship.yaml")
	cfg := fmt.Sprintf(`state_dir: %s
aws: {region: us-east-1, endpoint: %q}
flows:
  - {name: web, paths: [%q], http: {url: %q, compression: gzip, headers: {X-Token: t0k}}}
  - {name: fh, paths: [%q], firehose: {delivery_stream: app-logs}}
`, filepath.Join(dir, "state"), fhSrv.URL, logPath, httpSrv.URL+"/ingest", logPath)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := runMain([]string{"run", "--config", cfgPath, "--once"}, &out, &errOut); code != 0 {
		t.Fatalf("run --once: exit %d\n%s", code, errOut.String())
	}
	for name, c := range map[string]*lineCounter{"http": web, "firehose": fh} {
		c.mu.Lock()
		for _, l := range want {
			if c.lines[l] != 1 {
				t.Errorf("%s: line %q arrived %d times", name, l, c.lines[l])
				break
			}
		}
		if len(c.lines) != len(want) {
			t.Errorf("%s: %d distinct lines, want %d", name, len(c.lines), len(want))
		}
		c.mu.Unlock()
	}
}
