package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kinship-agent/kinship/aggregator"
	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/cloudwatch"
	"github.com/kinship-agent/kinship/internal/flow"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/spool"
	"github.com/kinship-agent/kinship/tailer"
)

// Supervisor owns the running flows: it starts them, and on a reload stops the ones that were
// removed or changed and starts the new versions, leaving unchanged flows untouched (their
// tailers, spools and in-flight requests never notice). A stopped flow's state (positions and
// spool) stays on disk, so a changed flow resumes exactly where its old version stopped.
//
// Concurrency: see the package comment. mu guards flows and errs; everything else belongs to
// the goroutine that calls StartAll, Wait and Reload.
type Supervisor struct {
	ctx  context.Context
	log  *slog.Logger
	set  *metrics.Set
	once bool
	// lockWait bounds the wait for a spool directory another process still holds.
	lockWait time.Duration
	// unreadableNow checks a path the tailer could not read (a seam: root reads anything).
	unreadableNow func(path string) bool
	// open builds a flow: openPipeline, or a fake in tests.
	open   func(cfg *config.Config, fc config.Flow) (pipeline, error)
	awsCfg *aws.Config    // loaded on first use; aws settings change only with a restart
	md     *flow.Metadata // EC2 context for add_metadata, fetched on first use
	// cw publishes CloudWatch metrics (metrics.cloudwatch), nil when off; stopCW publishes
	// the last interval and stops it. Set once, by StartAll.
	cw     *cloudwatch.Publisher
	stopCW func()

	cfg *config.Config // the configuration the flows run with
	// budget is the global spool bound, shared by every flow's spool for the whole run: a
	// reload changes its bound, flows leave and join it as they stop and start.
	budget *spool.Budget
	// openFiles is the descriptor budget every flow's tailer draws from: with one budget per
	// flow, several flows together could again run into RLIMIT_NOFILE.
	openFiles *tailer.OpenFiles
	// md5 hashes every flow's aggregates: one md5-simd server (1.5 MiB of buffers and a
	// goroutine) for the process instead of one per flow and per restart, and lanes that
	// fill with the aggregates of all flows. Started with the first flow built, closed by
	// Wait after the flows.
	md5     *aggregator.MD5Server
	orphans map[string]bool // flows whose kinship_orphan_spool_bytes series is set
	exited  chan struct{}   // a flow's Run returned (buffered 1, coalescing)

	// headroomStops end each Kinesis flow's stream headroom series (kinship_stream_*,
	// kinship_shard_*) when the flow stops.
	headroomMu    sync.Mutex
	headroomStops map[string]func()

	mu    sync.Mutex
	flows map[string]*runningFlow
	errs  []error // from flows that failed on their own (not stopped by a reload)
}

// pipeline is what the supervisor needs of a flow: a *flow.Flow, or a fake in tests.
type pipeline interface {
	Run(ctx context.Context, once bool) error
	Status() flow.Status
	Healthy(now time.Time, after time.Duration) (ok bool, reason string)
	Alive(now time.Time) bool
	Unreadable() []flow.UnreadableFile
}

var _ pipeline = (*flow.Flow)(nil)

type runningFlow struct {
	cfg    config.Flow
	dir    string
	f      pipeline
	cancel context.CancelFunc
	done   chan struct{}
	err    error // valid once done is closed
}

func (r *runningFlow) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// LockWait is how long a flow waits for its spool directory's lock at start. An agent
// started right after the previous one was killed (kill -9, then systemd's restart or an
// operator's) finds the lock still held for a moment by the dying process.
const LockWait = 10 * time.Second

// lockRetry is how often the lock is tried again meanwhile.
const lockRetry = 50 * time.Millisecond

// New returns a supervisor for cfg; nothing runs before StartAll.
func New(ctx context.Context, cfg *config.Config, set *metrics.Set, log *slog.Logger, once bool) *Supervisor {
	s := &Supervisor{ctx: ctx, log: log, set: set, once: once, cfg: cfg, lockWait: LockWait, unreadableNow: unreadableNow,
		budget: spool.NewBudget(int64(cfg.Spool.MaxBytes)), openFiles: tailer.NewOpenFiles(0),
		exited: make(chan struct{}, 1), flows: map[string]*runningFlow{}, headroomStops: map[string]func(){}}
	s.open = s.openPipeline
	return s
}

// build opens a flow (its spool and state directory); nothing runs yet.
func (s *Supervisor) build(cfg *config.Config, fc config.Flow) (*runningFlow, error) {
	f, err := s.open(cfg, fc)
	if err != nil {
		return nil, err
	}
	return &runningFlow{cfg: fc, dir: cfg.FlowDir(&fc), f: f, done: make(chan struct{})}, nil
}

// openPipeline builds a flow's destination and opens the flow.
func (s *Supervisor) openPipeline(cfg *config.Config, fc config.Flow) (pipeline, error) {
	b, err := destination(s.ctx, cfg, fc, &s.awsCfg, s.set.Flow(fc.Name), s.log.With("flow", fc.Name))
	if err != nil {
		return nil, fmt.Errorf("flow %s: %w", fc.Name, err)
	}
	dst := b.dst
	dir := cfg.FlowDir(&fc)
	deps := flow.Deps{Dir: dir, Destination: dst, Metrics: s.set.Flow(fc.Name), Logger: s.log,
		Metadata: s.metadataFor(fc), Budget: s.budget, OpenFiles: s.openFiles, MD5: s.md5Server(),
		ImportPositions: s.agentCheckpoints(cfg, fc)}
	if len(fc.DeleteAfterShipped) > 0 {
		deps.ShippedElsewhere = func(path string) (bool, string) { return s.shippedElsewhere(cfg, fc.Name, path) }
	}
	if sd, ok := dst.(shardedDestination); ok {
		deps.Shards = sd.shards
		sd.setLogger(s.log.With("flow", fc.Name))
	}
	s.countForCloudWatch(fc, &deps)
	f, err := s.openFlow(fc, deps)
	if err != nil {
		return nil, err // not f: a nil *flow.Flow in an interface is not nil
	}
	if b.headroom != nil {
		s.headroomMu.Lock()
		s.headroomStops[fc.Name] = flow.ReportHeadroom(deps.Metrics, b.headroom)
		s.headroomMu.Unlock()
	}
	return f, nil
}

// md5Server returns the process's MD5 server, starting it on first use.
func (s *Supervisor) md5Server() *aggregator.MD5Server {
	if s.md5 == nil {
		s.md5 = aggregator.NewMD5Server()
	}
	return s.md5
}

func (s *Supervisor) closeMD5() {
	if s.md5 != nil {
		s.md5.Close()
	}
}

// openFlow opens a flow, waiting up to lockWait for its spool directory while another
// process holds it.
func (s *Supervisor) openFlow(fc config.Flow, deps flow.Deps) (*flow.Flow, error) {
	start, logged := time.Now(), false
	for {
		f, err := flow.New(fc, deps)
		if !errors.Is(err, spool.ErrLocked) {
			return f, err
		}
		waited := time.Since(start)
		if s.ctx.Err() != nil {
			return nil, fmt.Errorf("%w; stopped while waiting for it", err)
		}
		if waited >= s.lockWait {
			return nil, fmt.Errorf("%w; still locked after %s: another kinship process uses this state directory. "+
				"Stop it (or wait until it has exited) and start again, or give this one its own state_dir", err, waited.Round(time.Millisecond))
		}
		if !logged {
			logged = true
			s.log.Warn("spool directory locked, probably by an agent that is still exiting; waiting for it",
				"flow", fc.Name, "dir", deps.Dir, "up_to", s.lockWait)
		}
		select {
		case <-s.ctx.Done():
		case <-time.After(lockRetry):
		}
	}
}

// StartAll builds every flow of the configuration, then runs them; a flow that cannot be
// built fails the start (before anything runs).
func (s *Supervisor) StartAll() error {
	s.reportOrphans(s.cfg)
	s.startCloudWatch()
	built := make([]*runningFlow, 0, len(s.cfg.Flows))
	for _, fc := range s.cfg.Flows {
		r, err := s.build(s.cfg, fc)
		if err != nil {
			return err
		}
		built = append(built, r)
	}
	for _, r := range built {
		s.run(r)
	}
	return nil
}

func (s *Supervisor) run(r *runningFlow) {
	ctx, cancel := context.WithCancel(s.ctx)
	r.cancel = cancel
	s.mu.Lock()
	s.flows[r.cfg.Name] = r
	s.mu.Unlock()
	go func() {
		err := r.f.Run(ctx, s.once)
		stoppedByUs := ctx.Err() != nil && s.ctx.Err() == nil
		if err != nil {
			if stoppedByUs {
				s.log.Warn("flow stopped for a reload with an error", "flow", r.cfg.Name, "err", err)
			} else {
				s.log.Error("flow stopped", "flow", r.cfg.Name, "err", err)
				s.mu.Lock()
				s.errs = append(s.errs, err)
				s.mu.Unlock()
			}
		}
		r.err = err
		cancel()
		close(r.done)
		select {
		case s.exited <- struct{}{}:
		default:
		}
	}()
}

// stop stops a flow gracefully and waits: what it read is in its spool and its positions
// are saved, so its next version neither loses nor repeats lines.
func (s *Supervisor) stop(r *runningFlow) {
	r.cancel()
	<-r.done
	s.mu.Lock()
	if s.flows[r.cfg.Name] == r {
		delete(s.flows, r.cfg.Name)
	}
	s.mu.Unlock()
	if s.cw != nil {
		s.cw.Unwatch(r.cfg.Name) // a new version of the flow watches again
	}
	s.headroomMu.Lock()
	if stop := s.headroomStops[r.cfg.Name]; stop != nil {
		stop() // its stream series go with it; a new version reports again
		delete(s.headroomStops, r.cfg.Name)
	}
	s.headroomMu.Unlock()
}

// active counts the flows still running.
func (s *Supervisor) active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.flows {
		if !r.exited() {
			n++
		}
	}
	return n
}

// Wait runs until ctx is done (and every flow stopped) or no flow runs any more (--once
// finished, or every flow failed); reload is called on each value from hup.
func (s *Supervisor) Wait(hup <-chan struct{}, reload func()) error {
	defer s.stopCloudWatch() // after the flows: their last requests are counted
	defer s.closeMD5()       // after the flows: their aggregators hash with it
	for s.active() > 0 {
		select {
		case <-s.ctx.Done():
			s.mu.Lock()
			running := make([]*runningFlow, 0, len(s.flows))
			for _, r := range s.flows {
				running = append(running, r)
			}
			s.mu.Unlock()
			for _, r := range running {
				<-r.done
			}
		case <-hup:
			reload()
		case <-s.exited:
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// running returns the flows that run now, by name.
func (s *Supervisor) running() []*runningFlow {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*runningFlow, 0, len(s.flows))
	for _, r := range s.flows {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].cfg.Name < out[j].cfg.Name })
	return out
}

// Alive is the liveness the systemd notifier watches: every running flow's heartbeat is recent.
// Flows stopped by a reload are not running and do not count.
func (s *Supervisor) Alive(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.flows {
		if r.exited() || !r.f.Alive(now) {
			return false
		}
	}
	return true
}

// shippedElsewhere is delete_after_shipped's question to the other flows: is the file at path
// shipped by every flow of cfg, other than self, that reads it (its patterns match it, or it
// knows it by identity)? A flow of cfg that reads it and does not run cannot say: not shipped.
func (s *Supervisor) shippedElsewhere(cfg *config.Config, self, path string) (bool, string) {
	type shipAsker interface {
		FileShipped(path string) flow.FileShipStatus
	}
	s.mu.Lock()
	running := make(map[string]shipAsker, len(s.flows))
	for name, r := range s.flows {
		if a, ok := r.f.(shipAsker); ok && name != self {
			running[name] = a
		}
	}
	s.mu.Unlock()
	for i := range cfg.Flows {
		fc := &cfg.Flows[i]
		if fc.Name == self {
			continue
		}
		reads := flow.Reads(fc, path)
		a, ok := running[fc.Name]
		if !ok {
			if reads {
				return false, "flow " + fc.Name + " reads it and does not run"
			}
			continue
		}
		if st := a.FileShipped(path); !st.Shipped && (reads || st.Reason != flow.ShipReasonUnknown) {
			return false, "flow " + fc.Name + ": " + st.Reason
		}
	}
	return true, ""
}
