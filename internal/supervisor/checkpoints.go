package supervisor

import (
	"errors"
	"io/fs"
	"time"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/kacheckpoint"
	"github.com/kinship-agent/kinship/tailer"
)

// agentCheckpoints returns what a flow asks at its first start for the Kinesis Agent's
// read offsets (agent.json's checkpointFile), or nil when there is nothing to ask: a
// native configuration (`kinship import-checkpoints` serves those), or a destination the
// Kinesis Agent does not have. Any failure is logged and leaves the flow to start_at: the
// checkpoints spare duplicates or a gap, but the lines still flow without them.
func (s *Supervisor) agentCheckpoints(cfg *config.Config, fc config.Flow) func() []tailer.Position {
	ac := cfg.AgentCheckpoints
	if ac == nil || len(kacheckpoint.AgentFlowIDs(fc)) == 0 {
		return nil
	}
	return func() []tailer.Position {
		log := s.log.With("flow", fc.Name, "checkpoint_file", ac.File)
		cps, err := kacheckpoint.Read(ac.File)
		if errors.Is(err, fs.ErrNotExist) {
			log.Info("no Kinesis Agent checkpoints to import; files start at start_at")
			return nil
		}
		if err != nil {
			log.Error("Kinesis Agent checkpoints not imported; files start at start_at", "err", err)
			return nil
		}
		plan := kacheckpoint.PlanFlow(fc, cps, time.Now(), ac.TTL.D())
		imported := 0
		for _, f := range plan.Files {
			switch {
			case f.Unread:
				imported++
				log.Info("Kinesis Agent checkpoint: file modified after the last checkpointed one, read from its start", "path", f.Path)
			case f.Finished:
				imported++
				log.Info("Kinesis Agent checkpoint: file not modified after the last checkpointed one, done with", "path", f.Path, "offset", f.Offset)
			case f.Imported:
				imported++
				log.Info("Kinesis Agent checkpoint imported", "path", f.Path, "offset", f.Offset, "checkpointed_path", f.RowPath)
			case f.Skip == kacheckpoint.SkipStale || f.Skip == kacheckpoint.SkipGone:
				// The usual end of a rotated file's checkpoint.
				log.Info("Kinesis Agent checkpoint skipped", "path", f.RowPath, "offset", f.Offset, "reason", f.Skip)
			default:
				log.Warn("Kinesis Agent checkpoint skipped", "path", f.RowPath, "offset", f.Offset, "reason", f.Skip)
			}
		}
		skipped := plan.Skipped()
		if len(plan.Files) > 0 {
			args := []any{"files_placed", imported}
			for reason, n := range skipped {
				args = append(args, "skipped: "+reason, n)
			}
			log.Info("Kinesis Agent checkpoints read", args...)
		}
		return plan.Positions
	}
}
