package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

func TestMain(m *testing.M) {
	if os.Getenv(sinkEnv) != "" {
		runSink() // the TCP row's child is this test binary
		return
	}
	os.Exit(m.Run())
}

// The table has every row with a figure, and the floor is their marked sum, so that
// bench/pipeline.sh's last block cannot silently lose a row or print nothing.
func TestReportMeasuresEveryRow(t *testing.T) {
	file := filepath.Join(t.TempDir(), "access.log")
	var log bytes.Buffer
	for i := 0; log.Len() < 16<<20; i++ {
		fmt.Fprintf(&log, "10.0.%d.%d - - [07/Dec/2026:12:00:00 +0000] \"GET /api/v1/items?id=%d HTTP/1.1\" 200 %d\n", i%250, i%200, i, i%9000)
	}
	if err := os.WriteFile(file, log.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := report(&out, file); err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^(\S.*?)\s+([0-9.]+)\s+([0-9.]+)( \*)?$`)
	rows := row.FindAllStringSubmatch(out.String(), -1)
	if len(rows) != 8 {
		t.Fatalf("want 8 measured rows, got %d:\n%s", len(rows), out.String())
	}
	var sum float64
	for _, r := range rows {
		cpu, err := strconv.ParseFloat(r[3], 64)
		if err != nil || cpu <= 0 {
			t.Errorf("row %q: CPU s/GiB %q", r[1], r[3])
		}
		if r[4] != "" {
			sum += cpu
		}
	}
	floor := regexp.MustCompile(`(?m)^floor: .*?([0-9.]+)  \(`).FindStringSubmatch(out.String())
	if floor == nil {
		t.Fatalf("no floor line:\n%s", out.String())
	}
	if got, _ := strconv.ParseFloat(floor[1], 64); got < sum-0.005 || got > sum+0.005 {
		t.Errorf("floor %v, want the marked rows' sum %.3f:\n%s", got, sum, out.String())
	}
}
