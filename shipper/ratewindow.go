package shipper

import "time"

// rateWindow sums bytes and records over a sliding window of whole-second buckets: a rate
// is the sum over the last len(buckets) seconds (the current one partly elapsed) divided by
// the time they cover. Not safe for concurrent use; the owner locks.
type rateWindow struct {
	buckets []rateBucket
	bytes   int64 // sums over the buckets
	records int64
	last    int64 // newest second written or read; buckets older than last-len+1 are cleared
}

type rateBucket struct{ bytes, records int64 }

func newRateWindow(seconds int) rateWindow {
	return rateWindow{buckets: make([]rateBucket, seconds)}
}

// advance moves the window to second sec, emptying the buckets that fell out of it. A sec
// before the newest one (a clock stepped back) counts as the newest.
func (w *rateWindow) advance(sec int64) int64 {
	if sec <= w.last {
		return w.last
	}
	n := int64(len(w.buckets))
	if sec-w.last >= n {
		clear(w.buckets)
		w.bytes, w.records = 0, 0
	} else {
		for s := w.last + 1; s <= sec; s++ {
			b := &w.buckets[s%n]
			w.bytes -= b.bytes
			w.records -= b.records
			*b = rateBucket{}
		}
	}
	w.last = sec
	return sec
}

func (w *rateWindow) add(sec int64, bytes, records int64) {
	sec = w.advance(sec)
	b := &w.buckets[sec%int64(len(w.buckets))]
	b.bytes += bytes
	b.records += records
	w.bytes += bytes
	w.records += records
}

// sums returns what the window holds at second sec.
func (w *rateWindow) sums(sec int64) (bytes, records int64) {
	w.advance(sec)
	return w.bytes, w.records
}

func (w *rateWindow) empty(sec int64) bool {
	b, r := w.sums(sec)
	return b == 0 && r == 0
}

// windowClock turns times into the windows' second numbers and tells the span their sums
// cover: the full buckets and the elapsed part of the current one, so that a steady rate
// reads as itself whatever the phase of the second. It is the whole window even just after
// start: a rate is an average over the last minute, never a burst of the first instant
// divided by that instant (which would warn at every start of a host that sends a large
// record now and then).
type windowClock struct {
	epoch   time.Time // second 0; times are measured from it on the monotonic clock
	seconds int       // the window's length
}

func (c *windowClock) second(now time.Time) int64 {
	d := now.Sub(c.epoch)
	if d < 0 {
		return 0
	}
	return int64(d / time.Second)
}

func (c *windowClock) span(now time.Time) time.Duration {
	d := max(now.Sub(c.epoch), 0)
	return time.Duration(c.seconds-1)*time.Second + d%time.Second
}
