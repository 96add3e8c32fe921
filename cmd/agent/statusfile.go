package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/flow"
)

// fileStatusReport is `kinship status --file PATH --json`.
type fileStatusReport struct {
	Path    string `json:"path"`
	Shipped bool   `json:"shipped"`
	// Flows are the flows that read the file: their patterns match it, or their state
	// knows it by identity (a rotated file the tailer read to its end).
	Flows []flow.FileShipStatus `json:"flows"`
}

// notShipped makes `status --file` exit 1: scripts wait on it.
type notShipped struct{ path string }

func (e notShipped) Error() string { return e.path + ": not fully shipped" }

// cmdStatusFile answers whether every line of one file is acknowledged by the destination
// of every flow that reads it, from the state on disk (with or without a running agent).
func cmdStatusFile(cfg *config.Config, path string, asJSON bool, stdout io.Writer) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("--file %s: %w", path, err)
	}
	rep := fileStatusReport{Path: abs, Flows: []flow.FileShipStatus{}}
	for i := range cfg.Flows {
		fc := &cfg.Flows[i]
		st := flow.ReadFileShipped(fc.Name, cfg.FlowDir(fc), abs)
		if st.Reason == flow.ShipReasonUnknown && !flow.Reads(fc, abs) {
			continue // neither matched nor known: not this flow's file
		}
		rep.Flows = append(rep.Flows, st)
	}
	rep.Shipped = len(rep.Flows) > 0
	for _, st := range rep.Flows {
		rep.Shipped = rep.Shipped && st.Shipped
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printFileStatus(stdout, &rep)
	}
	if !rep.Shipped {
		return notShipped{abs}
	}
	return nil
}

func printFileStatus(w io.Writer, rep *fileStatusReport) {
	if len(rep.Flows) == 0 {
		fmt.Fprintf(w, "not shipped: %s: no flow reads this file (no pattern matches it, no flow knows it)\n", rep.Path)
		return
	}
	if rep.Shipped {
		fmt.Fprintf(w, "shipped: %s\n", rep.Path)
	} else {
		fmt.Fprintf(w, "not shipped: %s\n", rep.Path)
	}
	for _, st := range rep.Flows {
		fmt.Fprintf(w, "  flow %s: %s\n", st.Flow, shipText(st))
	}
}

func shipText(st flow.FileShipStatus) string {
	switch st.Reason {
	case flow.ShipReasonShipped:
		return fmt.Sprintf("shipped (%s, every line acknowledged)", bytesText(st.Size))
	case flow.ShipReasonUnknown:
		return fmt.Sprintf("%s left: not yet read (the flow has no position for this file)", bytesText(st.LeftBytes))
	case flow.ShipReasonNotRead:
		return fmt.Sprintf("%s left: %s not yet read (position %d of %d)", bytesText(st.LeftBytes),
			bytesText(st.Size-st.Position), st.Position, st.Size)
	case flow.ShipReasonPartial:
		return fmt.Sprintf("%s left: the last line has no newline yet (a writer may still be writing it)", bytesText(st.LeftBytes))
	case flow.ShipReasonUnacked:
		return fmt.Sprintf("%s left: read, in the spool, not acknowledged by the destination (%d frames)",
			bytesText(st.LeftBytes), st.UnackedFrames)
	case flow.ShipReasonTruncated:
		return fmt.Sprintf("%s left: the file is shorter than its position %d (truncated or rewritten in place); it is read again",
			bytesText(st.LeftBytes), st.Position)
	}
	return "cannot tell: " + st.Error
}
