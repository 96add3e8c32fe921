// Command gen writes a log file of realistic ~140-byte access-log lines (or, with -format
// json, ~250-byte JSON log lines of the same requests) for the pipeline and spool
// benchmarks. It is deterministic, so runs on different commits read the same bytes.
// With -rate it is a logger instead: it appends the same lines at that many per second,
// each with its own write(2), as a logger that flushes every line does (logback's
// immediateFlush, the default).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"
)

func main() {
	out := flag.String("o", "bench.log", "output file")
	size := flag.Int64("size", 1<<30, "bytes to write (whole lines)")
	format := flag.String("format", "access", "access | json")
	rate := flag.Int("rate", 0, "append lines per second, one write each (0: write the file at once)")
	flag.Parse()
	if *format != "access" && *format != "json" {
		fmt.Fprintln(os.Stderr, "gen: -format must be access or json")
		os.Exit(2)
	}
	var err error
	if *rate > 0 {
		err = appendAtRate(*out, *size, *format == "json", *rate)
	} else {
		err = generate(*out, *size, *format == "json")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func generate(path string, size int64, json bool) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := emitLines(size, json, func(line []byte) error { _, err := w.Write(line); return err }); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// appendAtRate appends size bytes of lines to path at rate lines per second, one write(2) per
// line, in ticks of a millisecond.
func appendAtRate(path string, size int64, json bool, rate int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	sent := 0
	if err := emitLines(size, json, func(line []byte) error {
		for float64(sent) >= float64(rate)*time.Since(start).Seconds() {
			<-tick.C
		}
		sent++
		_, err := f.Write(line)
		return err
	}); err != nil {
		return err
	}
	return f.Close()
}

// emitLines hands emit the lines of the file, size bytes at most (whole lines).
func emitLines(size int64, json bool, emit func(line []byte) error) error {
	r := rand.New(rand.NewPCG(1, 2))
	paths := []string{"/api/v1/items", "/api/v1/users/profile", "/static/app.js", "/healthz", "/api/v2/orders/search"}
	agents := []string{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", "curl/8.5.0", "Go-http-client/1.1"}
	var written int64
	var line []byte
	for written < size {
		if json {
			line = fmt.Appendf(line[:0], `{"time":"2026-11-27T12:%02d:%02d.%03dZ","level":"%s","msg":"request served","remote":"10.%d.%d.%d","method":"GET","path":"%s","id":%d,"status":%d,"bytes":%d,"user_agent":"%s","duration_ms":%.3f,"trace_id":"%016x"}`+"\n",
				r.IntN(60), r.IntN(60), r.IntN(1000), []string{"info", "info", "info", "warn", "error"}[r.IntN(5)],
				r.IntN(256), r.IntN(256), r.IntN(256), paths[r.IntN(len(paths))], r.IntN(1e6),
				[]int{200, 200, 200, 304, 404, 500}[r.IntN(6)], r.IntN(50000), agents[r.IntN(len(agents))], r.Float64()*1000, r.Uint64())
		} else {
			line = fmt.Appendf(line[:0], "10.%d.%d.%d - - [27/Nov/2026:12:%02d:%02d +0000] \"GET %s?id=%d HTTP/1.1\" %d %d \"-\" \"%s\" rt=%.3f\n",
				r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(60), r.IntN(60), paths[r.IntN(len(paths))], r.IntN(1e6),
				[]int{200, 200, 200, 304, 404, 500}[r.IntN(6)], r.IntN(50000), agents[r.IntN(len(agents))], r.Float64())
		}
		if written+int64(len(line)) > size {
			break
		}
		if err := emit(line); err != nil {
			return err
		}
		written += int64(len(line))
	}
	return nil
}
