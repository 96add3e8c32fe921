package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// progressInterval keeps the line readable and cheap: at most two updates a second.
const progressInterval = 500 * time.Millisecond

// isTerminal reports whether w is a character device (a terminal), where a progress line
// that rewrites itself makes sense; logs and pipes get nothing.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress turns the read counters into one line: bytes read of the total (read + the lag
// the tailers see) and the rate since the start.
type progress struct {
	start time.Time
	total float64 // the largest read+lag seen: the amount of work known so far
}

func (p *progress) line(now time.Time, read, lag float64) string {
	p.total = max(p.total, read+lag)
	pct := 100.0
	if p.total > 0 {
		pct = 100 * read / p.total
	}
	rate := 0.0
	if el := now.Sub(p.start).Seconds(); el > 0 {
		rate = read / el / 1e6
	}
	return fmt.Sprintf("read %.1f / %.1f MB (%.0f%%)  %.1f MB/s", read/1e6, p.total/1e6, pct, rate)
}

// readCounters sums kinship_bytes_read_total and kinship_read_lag_bytes over all flows.
func readCounters(g prometheus.Gatherer) (read, lag float64) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, 0
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "kinship_bytes_read_total":
			for _, m := range mf.GetMetric() {
				read += m.GetCounter().GetValue()
			}
		case "kinship_read_lag_bytes":
			for _, m := range mf.GetMetric() {
				lag += m.GetGauge().GetValue()
			}
		}
	}
	return read, lag
}

// startProgress rewrites a progress line on w until the returned func is called, which
// prints the final state and ends the line.
func startProgress(w io.Writer, g prometheus.Gatherer) func() {
	p := &progress{start: time.Now()}
	done := make(chan struct{})
	var wg sync.WaitGroup
	print := func() {
		read, lag := readCounters(g)
		fmt.Fprintf(w, "\r\x1b[K%s", p.line(time.Now(), read, lag))
	}
	wg.Go(func() {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				print()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		print()
		fmt.Fprintln(w)
	}
}
