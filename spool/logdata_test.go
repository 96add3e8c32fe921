package spool

import (
	"fmt"
	"math/rand/v2"

	"github.com/kinship-agent/kinship/aggregator"
)

// logPayload returns a spool payload as kinship writes it: a KPL aggregate of about size
// bytes of log lines (access-log or JSON lines, the formats bench/gen writes), behind a
// short stand-in for the envelope header. Deterministic for a given seed.
func logPayload(json bool, seed uint64, size int) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	var lines [][]byte
	n := 0
	for n < size {
		l := logLine(r, json)
		lines = append(lines, l)
		n += len(l) + 4 // the aggregate's per-record overhead, roughly
	}
	pk := fmt.Sprintf("%032x", r.Uint64())
	head := []byte("\x01\x80\x10\x20" + pk + "\x00\x01\x81\x08\xa3\x9c\x01\x00\x00\x00\x00\x00\x00\x00\x00/var/log/nginx/access.log")
	return append(head, aggregator.EncodeAggregate(pk, "", lines)...)
}

var (
	benchPaths  = []string{"/api/v1/items", "/api/v1/users/profile", "/static/app.js", "/healthz", "/api/v2/orders/search"}
	benchAgents = []string{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", "curl/8.5.0", "Go-http-client/1.1"}
	benchCodes  = []int{200, 200, 200, 304, 404, 500}
)

func logLine(r *rand.Rand, json bool) []byte {
	if json {
		return fmt.Appendf(nil, `{"time":"2026-11-27T12:%02d:%02d.%03dZ","level":"%s","msg":"request served","remote":"10.%d.%d.%d","method":"GET","path":"%s","id":%d,"status":%d,"bytes":%d,"user_agent":"%s","duration_ms":%.3f,"trace_id":"%016x"}`,
			r.IntN(60), r.IntN(60), r.IntN(1000), []string{"info", "info", "info", "warn", "error"}[r.IntN(5)],
			r.IntN(256), r.IntN(256), r.IntN(256), benchPaths[r.IntN(len(benchPaths))], r.IntN(1e6),
			benchCodes[r.IntN(len(benchCodes))], r.IntN(50000), benchAgents[r.IntN(len(benchAgents))], r.Float64()*1000, r.Uint64())
	}
	return fmt.Appendf(nil, "10.%d.%d.%d - - [27/Nov/2026:12:%02d:%02d +0000] \"GET %s?id=%d HTTP/1.1\" %d %d \"-\" \"%s\" rt=%.3f",
		r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(60), r.IntN(60), benchPaths[r.IntN(len(benchPaths))], r.IntN(1e6),
		benchCodes[r.IntN(len(benchCodes))], r.IntN(50000), benchAgents[r.IntN(len(benchAgents))], r.Float64())
}
