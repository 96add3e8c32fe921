package supervisor

import (
	"errors"
	"os"
	"path/filepath"
	"sort"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/spool"
)

// ExportBudget publishes the global spool budget as kinship_spool_global_bytes and
// kinship_spool_global_max_bytes.
func (s *Supervisor) ExportBudget() {
	s.set.SpoolGlobal(func() float64 { return float64(s.budget.Used()) }, func() float64 { return float64(s.budget.Max()) })
}

// reportOrphans looks for state directories of flows that are not in cfg and whose spool still
// holds records never acknowledged: nothing ships them, and nothing may delete them but the
// operator. Each one is logged once per call (at start and after a reload) and exported as
// kinship_orphan_spool_bytes{flow}; `kinship status` lists them as removed. They are not part
// of the global spool budget: they cannot shrink, so counting them would stop live flows for
// good (see spool.Budget).
func (s *Supervisor) reportOrphans(cfg *config.Config) {
	configured := map[string]bool{}
	for _, fc := range cfg.Flows {
		configured[fc.Name] = true
	}
	found := map[string]bool{}
	root := filepath.Join(cfg.StateDir, "flows")
	entries, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("cannot list flow state directories to look for removed flows' spools", "dir", root, "err", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if !e.IsDir() || configured[e.Name()] {
			continue
		}
		dir := filepath.Join(root, e.Name())
		b, err := spool.Inspect(filepath.Join(dir, "spool"))
		if err != nil {
			s.log.Warn("flow removed from the configuration: its spool cannot be read", "flow", e.Name(), "dir", dir, "err", err)
			continue
		}
		if b.UnackedFrames == 0 {
			continue
		}
		found[e.Name()] = true
		s.set.OrphanSpool(e.Name(), b.Bytes)
		s.log.Warn("flow removed from the configuration still has unshipped records in its spool; they are kept, not shipped "+
			"(restore the flow to ship them, or delete its directory to discard them)",
			"flow", e.Name(), "dir", dir, "bytes", b.Bytes, "unacked_frames", b.UnackedFrames, "unacked_bytes", b.UnackedBytes)
	}
	for name := range s.orphans {
		if !found[name] {
			s.set.OrphanSpool(name, 0) // restored, emptied or deleted
		}
	}
	s.orphans = found
}
