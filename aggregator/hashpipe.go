package aggregator

import (
	"runtime"
	"slices"
	"sync"
	"time"
)

// hashJob is a sealed aggregate waiting for its MD5.
type hashJob interface {
	// hash appends the aggregate's MD5 with s, then tells the delivery goroutine.
	hash(s summer)
}

// hashItem is a job on its way to batchLoop; full says it was sealed because the next line
// did not fit: at high rates, peers are coming.
type hashItem struct {
	job  hashJob
	full bool
}

// hashTask is a job on its way to a worker; alone says it goes in a batch of fewer than
// minLanes, which md5-simd would hash with its scalar code after a hand-off to its server
// goroutine per 32 KiB: crypto/md5 on the worker does the same work ~10 % faster (943 against
// 877 MB/s for 512 KiB on one P, this AMD EPYC), and that is every aggregate at a steady rate
// (sealed one at a time by age or Nudge), where MD5 is a third of the agent's CPU.
type hashTask struct {
	job   hashJob
	alone bool
}

// hashPipeline hashes sealed aggregates for a packer: a batching goroutine (batchLoop) and
// workers hash goroutines, each owning one summer of the MD5Server. The packer still
// delivers in sealing order: a job tells it when its sum is there.
//
// Multi-lane MD5 only saves CPU when several aggregates are hashed at the same moment
// (with fewer than 3, md5-simd runs scalar code, slower than crypto/md5: see hashTask), so batchLoop
// holds an aggregate sealed because it was full until batch of them wait, and hashes them
// together.
// Holding costs latency only once the delivery goroutine has nothing else to do: while it is
// busy (Put blocks: the consumer pushes back) they wait for peers without a timer, which at
// high rates under backpressure gives full batches. When the delivery goroutine needs a held
// aggregate (need), they go at once, unless aggregates are sealed fast (less than wait/4
// apart: peers come soon), in which case they wait at most wait more. Everything else is
// hashed at once and takes the held ones with it: an aggregate sealed by age, Nudge, Flush
// or Close, a record that is not hashed and is delivered behind them (release), and every
// aggregate where the CPU has no lanes (batch 1). An idle consumer (Nudge) does not release
// them: at such rates the wait is at most IdleAge, the latency an idle seal has anyway.
type hashPipeline struct {
	md5     *MD5Server
	ownMD5  bool // started by newHashPipeline: closeServer closes it
	workers int
	batch   int           // aggregates hashed side by side (1: no batching)
	wait    time.Duration // the longest a needed full aggregate waits for peers at high rates

	work    chan hashItem // sealed aggregates, to batchLoop
	release chan struct{} // hash what waits for peers now
	needed  chan hashJob  // the delivery goroutine waits for this job's sum
	done    chan struct{} // batchLoop returned: everything submitted is on its way to the workers
	hashq   chan hashTask // batchLoop → workers

	onBatch func(n int) // tests: told the size of every batch handed to the workers
}

const (
	// maxLaneWorkers caps Workers' default where the CPU has MD5 lanes: 8 aggregates hashed
	// together fill AVX2's lanes and half of AVX-512's. Filling AVX-512's 16 would cost 8
	// more record buffers of 1 MiB for a tenth of a CPU second per GB (measured on an AMD
	// EPYC whose 512-bit operations cost about two 256-bit ones: 16 lanes took 1.5 times the
	// CPU of 8), and delivers 16 MiB bursts, which overflow the spool's 16 MiB frame cache:
	// the discard benchmark then spent 0.2 s more in the kernel and 18 MiB more RSS.
	maxLaneWorkers = 8
	// maxDefaultWorkers caps Workers' default where there are no lanes (crypto/md5 on 8
	// cores hashes several GB/s).
	maxDefaultWorkers = 8
	// minLanes: md5-simd hashes fewer messages than this with scalar code, so waiting for
	// fewer peers saves nothing.
	minLanes = 3
)

// newHashPipeline sizes the pipeline for opts (Workers, MD5, batchWait, IdleAge), for at most
// workers+extra jobs at once (so that handing a batch to the workers never blocks).
func newHashPipeline(opts Options, extra int) *hashPipeline {
	p := &hashPipeline{md5: opts.MD5, workers: opts.Workers, wait: opts.batchWait, onBatch: opts.onBatch}
	if p.md5 == nil {
		p.md5, p.ownMD5 = NewMD5Server(), true
	}
	if p.workers <= 0 {
		// With lanes, one worker per lane used: one core hashes them all, and each worker
		// is a record buffer being hashed, so more would cost memory for nothing. Without
		// lanes, one core per worker, but not one record buffer per core of a big host:
		// memory is bounded by configuration, not by the machine.
		p.workers = min(runtime.GOMAXPROCS(0), maxDefaultWorkers)
		if p.md5.Lanes() > 1 {
			p.workers = min(p.md5.Lanes(), maxLaneWorkers)
		}
	}
	p.batch = min(p.workers, p.md5.Lanes())
	if p.batch < minLanes || !opts.Aggregate {
		p.batch = 1
	}
	if p.wait <= 0 {
		p.wait = opts.IdleAge
	}
	p.work = make(chan hashItem, p.workers+extra)
	p.release = make(chan struct{}, 1)
	p.needed = make(chan hashJob)
	p.done = make(chan struct{})
	p.hashq = make(chan hashTask, p.workers+extra)
	return p
}

// start runs the goroutines, counted in wg.
func (p *hashPipeline) start(wg *sync.WaitGroup) {
	wg.Add(p.workers + 1)
	for range p.workers {
		go p.hashLoop(wg, p.md5.newSummer(), newScalarSummer())
	}
	go p.batchLoop(wg)
}

// submit queues a sealed aggregate. Called in sealing order, from one goroutine at a time.
func (p *hashPipeline) submit(j hashJob, full bool) { p.work <- hashItem{j, full} }

// releaseBatch has batchLoop hash what waits for peers now. Never blocks.
func (p *hashPipeline) releaseBatch() {
	select {
	case p.release <- struct{}{}:
	default:
	}
}

// need tells batchLoop that the delivery goroutine is about to wait for j's sum: if j is
// held for peers, holding it longer now delays delivery. j was submitted before.
func (p *hashPipeline) need(j hashJob) {
	select {
	case p.needed <- j:
	case <-p.done: // everything was sent to the workers
	}
}

// shut ends the goroutines once everything submitted is hashed.
func (p *hashPipeline) shut() { close(p.work) }

// closeServer closes the MD5 server if the pipeline started it; after the goroutines ended.
func (p *hashPipeline) closeServer() {
	if p.ownMD5 {
		p.md5.Close()
	}
}

// batchLoop hands sealed aggregates to the workers, holding full ones back (see
// hashPipeline). It owns pending and the wait timer.
func (p *hashPipeline) batchLoop(wg *sync.WaitGroup) {
	defer wg.Done()
	defer close(p.done)
	defer close(p.hashq)
	pending := make([]hashJob, 0, p.batch)
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	defer wait.Stop()
	waiting := false // the timer runs: a needed aggregate waits for peers
	var lastSeal time.Time
	fast := false // the last two aggregates were sealed less than wait/4 apart
	// sendFirst hands the oldest n held aggregates to the workers.
	sendFirst := func(n int) {
		if n == 0 {
			return
		}
		if p.onBatch != nil {
			p.onBatch(n)
		}
		for _, j := range pending[:n] {
			p.hashq <- hashTask{j, n < minLanes} // never blocks: hashq holds every job there can be
		}
		rest := copy(pending, pending[n:])
		clear(pending[rest:])
		pending = pending[:rest]
		wait.Stop()
		waiting = false
	}
	// send hands everything held to the workers, a batch at a time.
	send := func() {
		for len(pending) > 0 {
			sendFirst(min(len(pending), p.batch))
		}
	}
	// take holds a sealed aggregate; false: it must not wait (nor what waits before it).
	take := func(it hashItem) (hold bool) {
		now := time.Now()
		fast = now.Sub(lastSeal) <= p.wait/4
		lastSeal = now
		pending = append(pending, it.job)
		return it.full
	}
	// drain takes what was submitted before a release or need: it is in work already.
	drain := func() (open bool) {
		for {
			select {
			case it, ok := <-p.work:
				if !ok {
					return false
				}
				if !take(it) {
					send()
				}
			default:
				return true
			}
		}
	}
	for {
		var timeout <-chan time.Time
		if waiting {
			timeout = wait.C
		}
		select {
		case it, ok := <-p.work:
			if !ok {
				send()
				return
			}
			if !take(it) || len(pending) >= p.batch {
				send()
			}
		case <-p.release:
			open := drain()
			send()
			if !open {
				return
			}
		case j := <-p.needed:
			open := drain()
			switch {
			case !open:
				send()
				return
			case !slices.Contains(pending, j): // sent already, being hashed
			case !fast:
				// The batch holding it (the oldest); fewer peers after it go on waiting.
				sendFirst(min(len(pending), p.batch))
			case !waiting:
				wait.Reset(p.wait)
				waiting = true
			}
			for len(pending) >= p.batch {
				sendFirst(p.batch)
			}
		case <-timeout:
			send()
		}
	}
}

// waitHashed waits until j's sum is there (hashed), telling p first when j is not hashed yet:
// the delivery goroutine of a packer would otherwise wait for peers j may be held for.
func waitHashed(p *hashPipeline, j hashJob, hashed <-chan struct{}) {
	select {
	case <-hashed:
		return
	default:
	}
	p.need(j)
	<-hashed
}

// hashLoop hashes the jobs batchLoop sends: with the server's summer (lanes), or, for a job
// hashed alone, with its own crypto/md5 (see hashTask).
func (p *hashPipeline) hashLoop(wg *sync.WaitGroup, lanes, alone summer) {
	defer wg.Done()
	defer lanes.Close()
	for t := range p.hashq {
		if t.alone {
			t.job.hash(alone)
		} else {
			t.job.hash(lanes)
		}
	}
}
