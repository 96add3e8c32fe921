package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/flow"
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

// toRead estimates the bytes a --once run has ahead of it: the matched files' sizes minus the
// positions saved for them. The tailers' lag gauge alone comes too late (it is updated on
// their maintenance tick), so this sets the total from the first progress line on.
func toRead(cfg *config.Config) int64 {
	var total int64
	for _, fc := range cfg.Flows {
		done := map[string]int64{}
		for _, fs := range flow.ReadStatus(fc.Name, cfg.FlowDir(&fc)).Files {
			if fs.Size >= 0 {
				done[fs.Path] = fs.Position
			}
		}
		seen := map[string]bool{}
		for _, pat := range fc.Paths {
			matches, _ := doublestar.FilepathGlob(pat, doublestar.WithFilesOnly(), doublestar.WithFailOnIOErrors())
			for _, m := range matches {
				if seen[m] {
					continue
				}
				seen[m] = true
				if fi, err := os.Stat(m); err == nil {
					total += max(0, fi.Size()-done[m])
				}
			}
		}
	}
	return total
}

// startProgress rewrites a progress line on w until the returned func is called, which
// prints the final state and ends the line. total is the work known at the start.
func startProgress(w io.Writer, g prometheus.Gatherer, total int64) func() {
	p := &progress{start: time.Now(), total: float64(total)}
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
