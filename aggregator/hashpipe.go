package aggregator

import (
	"runtime"
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

// hashPipeline hashes sealed aggregates for a packer: a batching goroutine (batchLoop) and
// workers hash goroutines, each owning one summer of the MD5Server. The packer still
// delivers in sealing order: a job tells it when its sum is there.
//
// Multi-lane MD5 only saves CPU when several aggregates are hashed at the same moment, so at
// high rates batchLoop holds a full aggregate until batch of them are sealed, or wait passed,
// or the packer releases them (Flush, Close, or a record that is not hashed and is delivered
// behind them). Everything else is hashed at once, taking the waiting ones with it: an
// aggregate sealed by age, Nudge, Flush or Close, one sealed more than wait/4 after the
// previous one (the rate is too low for peers to come soon), and every aggregate where the
// CPU has no lanes. An idle consumer (Nudge) does not release them: at such rates the wait
// is at most IdleAge, the latency an idle seal has anyway, and a fast consumer is idle
// between any two records.
type hashPipeline struct {
	md5     *MD5Server
	ownMD5  bool // started by newHashPipeline: closeServer closes it
	workers int
	batch   int           // aggregates hashed side by side at high rates (1: no batching)
	wait    time.Duration // the longest a full aggregate waits for peers

	work    chan hashItem // sealed aggregates, to batchLoop
	release chan struct{} // hash what waits for peers now
	hashq   chan hashJob  // batchLoop → workers
}

const (
	// defaultLaneWorkers is Workers where the CPU has MD5 lanes (one core hashes them all:
	// more workers fill more lanes, not more cores). 8 aggregates hashed at once fill AVX2's
	// lanes and half of AVX-512's, for 8 more record buffers at full speed.
	defaultLaneWorkers = 8
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
	p := &hashPipeline{md5: opts.MD5, workers: opts.Workers, wait: opts.batchWait}
	if p.md5 == nil {
		p.md5, p.ownMD5 = NewMD5Server(), true
	}
	if p.workers <= 0 {
		// Without lanes, one core per worker, but not one record buffer per core of a big
		// host: memory is bounded by configuration, not by the machine.
		p.workers = min(runtime.GOMAXPROCS(0), maxDefaultWorkers)
		if p.md5.Lanes() > 1 {
			p.workers = defaultLaneWorkers
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
	p.hashq = make(chan hashJob, p.workers+extra)
	return p
}

// start runs the goroutines, counted in wg.
func (p *hashPipeline) start(wg *sync.WaitGroup) {
	wg.Add(p.workers + 1)
	for range p.workers {
		go p.hashLoop(wg, p.md5.newSummer())
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
	defer close(p.hashq)
	pending := make([]hashJob, 0, p.batch)
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	defer wait.Stop()
	var lastSeal time.Time
	send := func() {
		for _, j := range pending {
			p.hashq <- j // never blocks: hashq holds every job there can be
		}
		clear(pending)
		pending = pending[:0]
		wait.Stop()
	}
	for {
		var timeout <-chan time.Time
		if len(pending) > 0 {
			timeout = wait.C
		}
		select {
		case it, ok := <-p.work:
			if !ok {
				send()
				return
			}
			now := time.Now()
			soon := now.Sub(lastSeal) <= p.wait/4 // peers are likely within wait
			lastSeal = now
			pending = append(pending, it.job)
			switch {
			case !it.full || !soon || len(pending) >= p.batch:
				send()
			case len(pending) == 1:
				wait.Reset(p.wait)
			}
		case <-p.release:
			// Everything sealed before the release is in work already.
			for drained := false; !drained; {
				select {
				case it, ok := <-p.work:
					if !ok {
						send()
						return
					}
					pending = append(pending, it.job)
				default:
					drained = true
				}
			}
			send()
		case <-timeout:
			send()
		}
	}
}

func (p *hashPipeline) hashLoop(wg *sync.WaitGroup, sum summer) {
	defer wg.Done()
	defer sum.Close()
	for j := range p.hashq {
		j.hash(sum)
	}
}
