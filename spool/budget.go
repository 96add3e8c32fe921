package spool

import (
	"math"
	"sync"
)

// Budget bounds the bytes of several spools together (the global spool.max_bytes): one is
// created per agent run and handed to every flow's spool through Options.Budget, so it
// outlives the spools of flows stopped and started by a reload.
//
// # Fairness
//
// A plain shared pool lets one flow whose destination is down take all of it, and a healthy
// flow would then block forever on another flow's outage. So each spool has a reserve that
// no other spool can take: min(its own MaxBytes, Max/(2N)) for N spools; the rest of Max is
// shared first come, first served. A spool may append while it holds less than its reserve,
// or while the shared part has room; otherwise it applies its own when_full policy (block
// waits until any spool frees bytes; drop_oldest deletes its own oldest segments). A spool
// holding no data frame may always append, so a reserve smaller than one record still lets
// the flow make progress. Together the spools hold at most Max plus, per spool, the frame
// appended after the last check (and segment headers and ack frames).
//
// Spools not opened with the budget (say, of flows removed from the configuration, left on
// disk) do not count: they cannot shrink, so counting them would block live flows forever.
//
// Concurrency: every method is safe for concurrent use. Lock order: a spool's mu, then the
// budget's mu; the budget never calls into a spool.
type Budget struct {
	mu      sync.Mutex
	max     int64 // 0: unbounded (usage is still tracked)
	used    int64
	shared  int64 // sum over shares of max(0, used - reserve)
	reserve int64 // sum of reserves
	shares  map[*budgetShare]struct{}
	changed chan struct{} // closed and replaced when bytes are freed or the bound changes
}

// budgetShare is one spool's part of a Budget; its fields are guarded by the budget's mu.
type budgetShare struct {
	b       *Budget
	limit   int64 // the spool's own MaxBytes, 0: none
	used    int64
	reserve int64
}

// NewBudget returns a budget of n bytes (0 or less: unbounded, usage tracked only).
func NewBudget(n int64) *Budget {
	return &Budget{max: max(n, 0), shares: map[*budgetShare]struct{}{}, changed: make(chan struct{})}
}

// SetMax changes the bound (a reload); spools waiting for room look again.
func (b *Budget) SetMax(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.max = max(n, 0)
	b.rebalanceLocked()
	b.broadcastLocked()
}

// Max returns the bound, 0 if unbounded.
func (b *Budget) Max() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.max
}

// Used returns the bytes held by the spools open with this budget.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

func (b *Budget) join(limit, used int64) *budgetShare {
	b.mu.Lock()
	defer b.mu.Unlock()
	sh := &budgetShare{b: b, limit: limit, used: used}
	b.shares[sh] = struct{}{}
	b.used += used
	b.rebalanceLocked()
	return sh
}

// leave gives the share's bytes back: the spool is closed, its files no longer count.
func (sh *budgetShare) leave() {
	b := sh.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.shares[sh]; !ok {
		return
	}
	delete(b.shares, sh)
	b.used -= sh.used
	sh.used = 0
	b.rebalanceLocked()
	b.broadcastLocked()
}

// set records the spool's bytes on disk; a decrease wakes the spools waiting for room. A
// share that left (its spool closed) no longer counts.
func (sh *budgetShare) set(n int64) {
	b := sh.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.shares[sh]; !ok || n == sh.used {
		return
	}
	freed := n < sh.used
	b.shared -= max(0, sh.used-sh.reserve)
	b.used += n - sh.used
	sh.used = n
	b.shared += max(0, sh.used-sh.reserve)
	if freed {
		b.broadcastLocked()
	}
}

// room reports whether the spool may append now, and returns a channel closed at the next
// change that may give it room.
func (sh *budgetShare) room() (bool, <-chan struct{}) {
	b := sh.b
	b.mu.Lock()
	defer b.mu.Unlock()
	ok := b.max == 0 || sh.used < sh.reserve || b.shared < b.max-b.reserve
	return ok, b.changed
}

// rebalanceLocked recomputes the reserves after the set of spools or the bound changed.
func (b *Budget) rebalanceLocked() {
	b.shared, b.reserve = 0, 0
	if len(b.shares) == 0 {
		return
	}
	fair := b.max / int64(2*len(b.shares))
	for sh := range b.shares {
		sh.reserve = fair
		if sh.limit > 0 {
			sh.reserve = min(fair, sh.limit)
		}
		b.reserve += sh.reserve
		b.shared += max(0, sh.used-sh.reserve)
	}
}

func (b *Budget) broadcastLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// syncBudgetLocked brings the budget up to the spool's bytes on disk. It runs before every
// check for room (so a spool's own bytes are exact when it decides) and whenever the gauge is
// set (commits, deletions, drops: freed bytes wake waiting spools), so another spool's
// count lags by at most what it appended since its last check: one frame. Syncing instead
// of hooking every change of s.bytes keeps the count right whatever code changes it. mu held
// (or the spool not yet shared).
func (s *Spool) syncBudgetLocked() {
	if s.share != nil {
		s.share.set(s.diskBytesLocked())
	}
}

// leaveBudget stops the spool counting towards its budget (Close): its files stay on disk
// but no longer belong to a running flow.
func (s *Spool) leaveBudget() {
	if s.share != nil {
		s.share.leave()
	}
}

// roomLocked reports whether an Append may write now: below the spool's own MaxBytes and
// within its budget. The channel (nil without a budget) is closed when the budget may
// have room again. mu held.
func (s *Spool) roomLocked() (bool, <-chan struct{}) {
	if s.opts.MaxBytes > 0 && s.diskBytesLocked() >= s.opts.MaxBytes {
		return false, nil
	}
	if s.share == nil {
		return true, nil
	}
	s.syncBudgetLocked()
	return s.share.room()
}

// budgetMax is the global bound for log lines (0: none).
func (s *Spool) budgetMax() int64 {
	if s.share == nil {
		return 0
	}
	return s.share.b.Max()
}

// joinBudget makes the spool count towards Options.Budget from now on. A spool without a
// bound of its own gets an unreachable one, so that Append checks for room (the budget's)
// on the same path as for MaxBytes. Called by Open before the spool is shared.
func (s *Spool) joinBudget() {
	if s.opts.Budget == nil {
		return
	}
	s.share = s.opts.Budget.join(s.opts.MaxBytes, s.bytes)
	if s.opts.MaxBytes <= 0 {
		s.opts.MaxBytes = math.MaxInt64
	}
}
