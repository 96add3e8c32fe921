package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/flow"
	"github.com/kinship-agent/kinship/internal/kacheckpoint"
	"github.com/kinship-agent/kinship/spool"
)

// cmdImportCheckpoints writes the Kinesis Agent's read offsets into the flows' positions
// before kinship first runs them: what `run` does by itself at a flow's first start for an
// agent.json, for a native configuration or to see beforehand what will be resumed where.
func cmdImportCheckpoints(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import-checkpoints", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig, "configuration file (YAML or agent.json)")
	from := fs.String("from", "", "the Kinesis Agent's checkpoint database [agent.json's checkpointFile, else "+config.DefaultAgentCheckpointFile+"]")
	force := fs.Bool("force", false, "import into flows that already have positions (replacing those of the same files)")
	ttl := fs.Duration("ttl", 0, "ignore checkpoints older than this [agent.json's checkpointTimeToLiveDays, else 7 days]")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	db, maxAge := config.DefaultAgentCheckpointFile, config.DefaultAgentCheckpointTTL.D()
	if ac := cfg.AgentCheckpoints; ac != nil {
		db, maxAge = ac.File, ac.TTL.D()
	}
	if *from != "" {
		db = *from
	}
	if *ttl > 0 {
		maxAge = *ttl
	}
	cps, err := kacheckpoint.Read(db)
	if err != nil {
		return err
	}

	now := time.Now()
	var plans []kacheckpoint.Plan
	var flows []config.Flow
	var refused []string
	for _, fc := range cfg.Flows {
		plan := kacheckpoint.PlanFlow(fc, cps, now, maxAge)
		if len(plan.Files) == 0 {
			continue
		}
		dir := cfg.FlowDir(&fc)
		if _, err := os.Stat(filepath.Join(dir, "positions.json")); err == nil && !*force {
			refused = append(refused, fmt.Sprintf("%s (%s)", fc.Name, dir))
		}
		plan.AddStartAt(fc)
		plans, flows = append(plans, plan), append(flows, fc)
	}
	if len(refused) > 0 {
		return fmt.Errorf("these flows already have positions of their own: %s; importing would move them back or forth (--force replaces those of the checkpointed files)", strings.Join(refused, ", "))
	}

	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	for i, plan := range plans {
		fc := flows[i]
		fmt.Fprintf(tw, "flow %s (%s):\n", plan.Flow, strings.Join(kacheckpoint.AgentFlowIDs(fc), ", "))
		for _, f := range plan.Files {
			fmt.Fprintf(tw, "  %s\t%d\t%s\n", f.Path, f.Offset, describe(f, fc))
		}
	}
	_ = tw.Flush()
	if un := kacheckpoint.Unmatched(cfg, cps); len(un) > 0 {
		ids := map[string]int{}
		for _, c := range un {
			ids[c.Flow]++
		}
		names := make([]string, 0, len(ids))
		for id, n := range ids {
			names = append(names, fmt.Sprintf("%s (%d)", id, n))
		}
		sort.Strings(names)
		fmt.Fprintf(stdout, "checkpoints of no flow of this configuration, not imported: %s\n", strings.Join(names, ", "))
	}
	if len(plans) == 0 {
		fmt.Fprintf(stdout, "no checkpoint in %s belongs to a flow of %s\n", db, *path)
		return nil
	}

	for i, plan := range plans {
		fc := flows[i]
		err := flow.ImportPositions(fc, cfg.FlowDir(&fc), plan.Positions, *force)
		switch {
		case errors.Is(err, spool.ErrLocked):
			return fmt.Errorf("flow %s: kinship is running (its spool is locked): stop it first, the running agent keeps its own positions: %w", fc.Name, err)
		case err != nil:
			return err
		}
		fmt.Fprintf(stdout, "flow %s: %d positions saved\n", fc.Name, len(plan.Positions))
	}
	return nil
}

func describe(f kacheckpoint.File, fc config.Flow) string {
	switch {
	case f.StartAt:
		return "no checkpoint: start_at " + fc.StartAt
	case f.Unread:
		return "no checkpoint, modified after the last checkpointed file: read from its start"
	case f.Finished:
		return "no checkpoint, not modified after the last checkpointed file: at its end"
	case f.Imported && f.Path != f.RowPath:
		return "imported (checkpointed as " + f.RowPath + ", renamed since)"
	case f.Imported:
		return "imported"
	}
	return "skipped: " + f.Skip
}
