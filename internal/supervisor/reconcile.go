package supervisor

import (
	"sort"
	"time"

	"github.com/kinship-agent/kinship/config"
)

// flowState is what reconcile needs to know of a running flow.
type flowState struct {
	cfg    config.Flow
	dir    string
	exited bool // Run returned on its own (it failed): a reload starts it again
}

// plan is what a reload does, in this order: stop the flows in stop, then start the flows in
// start, each after stopping the running version of the same name if there is one (its spool
// must be closed before the new version opens it). The flows in keep are not touched: their
// tailers, spools and requests in flight never notice the reload.
type plan struct {
	stop  []string      // running and no longer desired (sorted)
	start []config.Flow // desired and not running as configured: new, changed, or exited (configuration order)
	keep  []string      // running unchanged (configuration order)
}

// reconcile compares what runs with what is desired: start what is desired and missing,
// stop what runs and is no longer desired. A flow is the same when its settings are equal
// (config.Flow.Equal: not where it was written) and its state directory did not move.
func reconcile(running map[string]flowState, desired *config.Config) plan {
	var p plan
	want := make(map[string]bool, len(desired.Flows))
	for _, fc := range desired.Flows {
		want[fc.Name] = true
		r, ok := running[fc.Name]
		if ok && !r.exited && r.dir == desired.FlowDir(&fc) && r.cfg.Equal(fc) {
			p.keep = append(p.keep, fc.Name)
			continue
		}
		p.start = append(p.start, fc)
	}
	for name := range running {
		if !want[name] {
			p.stop = append(p.stop, name)
		}
	}
	sort.Strings(p.stop)
	return p
}

// Reload applies a new configuration read from path: removed flows stop (their state stays
// on disk), changed flows restart with their new settings, new flows start, unchanged flows
// keep running untouched. An invalid configuration changes nothing. aws and metrics settings
// need a restart.
func (s *Supervisor) Reload(path string) {
	start := time.Now()
	cfg, err := config.Load(path)
	if err != nil {
		s.log.Error("reload: configuration is invalid; the running one stays in effect", "config", path, "err", err)
		return
	}
	if cfg.AWS != s.cfg.AWS || cfg.Metrics != s.cfg.Metrics {
		s.log.Warn("reload: aws and metrics settings take effect at the next restart")
	}
	s.mu.Lock()
	current := make(map[string]*runningFlow, len(s.flows))
	states := make(map[string]flowState, len(s.flows))
	for name, r := range s.flows {
		current[name] = r
		states[name] = flowState{cfg: r.cfg, dir: r.dir, exited: r.exited()}
	}
	s.mu.Unlock()
	p := reconcile(states, cfg)

	for _, name := range p.stop {
		s.stop(current[name])
		s.set.Forget(name)
		s.log.Info("reload: flow removed; its state stays on disk", "flow", name, "dir", current[name].dir)
	}
	if cfg.Spool.MaxBytes != s.cfg.Spool.MaxBytes {
		s.log.Info("reload: global spool bound changed", "from", s.cfg.Spool.MaxBytes, "to", cfg.Spool.MaxBytes)
	}
	// After the removed flows left the budget, before the new ones join it.
	s.budget.SetMax(int64(cfg.Spool.MaxBytes))
	var added, changed []string
	for _, fc := range p.start {
		if r, ok := current[fc.Name]; ok {
			s.stop(r)
			changed = append(changed, fc.Name)
		} else {
			added = append(added, fc.Name)
		}
		nr, err := s.build(cfg, fc)
		if err != nil {
			s.log.Error("reload: flow cannot start; it stays stopped until the next reload", "flow", fc.Name, "err", err)
			continue
		}
		s.run(nr)
	}
	if len(p.stop) > 0 || len(added) > 0 {
		s.reportOrphans(cfg)
	}
	keepAWS, keepMetrics := s.cfg.AWS, s.cfg.Metrics
	s.cfg = cfg
	s.cfg.AWS, s.cfg.Metrics = keepAWS, keepMetrics
	kept := append([]string(nil), p.keep...)
	for _, l := range [][]string{added, changed, kept} {
		sort.Strings(l)
	}
	s.log.Info("configuration reloaded", "added", added, "changed", changed, "removed", p.stop,
		"unchanged", kept, "took", time.Since(start).Round(time.Millisecond))
}
