package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/flow"
	"github.com/kinship-agent/kinship/internal/supervisor"
)

// statusReport is `kinship status --json`: a stable shape for scripts.
type statusReport struct {
	// Agent says whether a running agent answered on metrics.listen: then running, last_send
	// and last_error are filled in from it. Files and spool always come from the state on disk.
	Agent struct {
		URL       string `json:"url,omitempty"`
		Reachable bool   `json:"reachable"`
		Error     string `json:"error,omitempty"`
	} `json:"agent"`
	// SpoolGlobal is the global spool bound and what counts towards it (read from disk).
	SpoolGlobal struct {
		Bytes    int64 `json:"bytes"`     // the configured flows' spools together
		MaxBytes int64 `json:"max_bytes"` // top-level spool.max_bytes; 0: none
		// OrphanBytes are held by spools of flows no longer configured: kept on disk, not
		// counted towards the bound.
		OrphanBytes int64 `json:"orphan_bytes"`
	} `json:"spool_global"`
	Flows []flow.Status `json:"flows"`
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig, "configuration file (YAML)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for a running agent's /status")
	file := fs.String("file", "", "say whether every line of this file is acknowledged by the destination: exit 0 if so, 1 if not")
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
	if *file != "" {
		return cmdStatusFile(cfg, *file, *asJSON, stdout)
	}
	rep := statusReport{Flows: readStatuses(cfg)}
	rep.SpoolGlobal.MaxBytes = int64(cfg.Spool.MaxBytes)
	for _, f := range rep.Flows {
		if f.Configured {
			rep.SpoolGlobal.Bytes += f.Spool.Bytes
		} else {
			rep.SpoolGlobal.OrphanBytes += f.Spool.Bytes
		}
	}
	if cfg.Metrics.Listen != "" {
		rep.Agent.URL = "http://" + dialable(cfg.Metrics.Listen) + "/status"
		live, err := fetchStatus(ctx, rep.Agent.URL, *timeout)
		if err != nil {
			rep.Agent.Error = err.Error()
		} else {
			rep.Agent.Reachable = true
			mergeLive(rep.Flows, live)
		}
	}
	for i := range rep.Flows {
		supervisor.RedactStatus(&rep.Flows[i]) // an older agent's /status may not have
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printStatus(stdout, &rep)
	return nil
}

// readStatuses reads every configured flow's state, then the state directories of flows
// that are no longer configured (their spool may still hold unshipped records).
func readStatuses(cfg *config.Config) []flow.Status {
	out := make([]flow.Status, 0, len(cfg.Flows))
	seen := map[string]bool{}
	for _, fc := range cfg.Flows {
		st := flow.ReadStatus(fc.Name, cfg.FlowDir(&fc))
		st.Configured = true
		out = append(out, st)
		seen[fc.Name] = true
	}
	entries, _ := os.ReadDir(filepath.Join(cfg.StateDir, "flows"))
	for _, e := range entries {
		if e.IsDir() && !seen[e.Name()] {
			out = append(out, flow.ReadStatus(e.Name(), filepath.Join(cfg.StateDir, "flows", e.Name())))
		}
	}
	return out
}

// dialable turns a listen address into one to connect to: ":9780" and "0.0.0.0:9780"
// listen everywhere, loopback included.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}

func fetchStatus(ctx context.Context, url string, timeout time.Duration) ([]flow.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("status: agent not reachable: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status: %s: %s", url, resp.Status)
	}
	var live []flow.Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&live); err != nil {
		return nil, fmt.Errorf("status: %s: %w", url, err)
	}
	return live, nil
}

// mergeLive adds what only the running agent knows to the state read from disk.
func mergeLive(flows []flow.Status, live []flow.Status) {
	byName := map[string]*flow.Status{}
	for i := range live {
		byName[live[i].Name] = &live[i]
	}
	for i := range flows {
		if l := byName[flows[i].Name]; l != nil {
			flows[i].Running = l.Running
			flows[i].LastSend, flows[i].LastError, flows[i].LastErrorAt = l.LastSend, l.LastError, l.LastErrorAt
		}
	}
}

func printStatus(w io.Writer, rep *statusReport) {
	switch {
	case rep.Agent.Reachable:
		fmt.Fprintf(w, "agent: running (%s)\n", rep.Agent.URL)
	case rep.Agent.URL != "":
		fmt.Fprintf(w, "agent: not reachable (%s); state read from disk\n", rep.Agent.Error)
	default:
		fmt.Fprintln(w, "agent: metrics.listen not set; state read from disk")
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLOW\tSTATE\tFILES\tLAG\tSPOOL\tUNACKED\tLAST SEND\tLAST ERROR")
	for _, f := range rep.Flows {
		state := "stopped"
		switch {
		case !f.Configured:
			state = "removed"
		case f.Running:
			state = "running"
		case rep.Agent.Reachable:
			state = "not running"
		}
		var lag int64
		for _, fs := range f.Files {
			lag += fs.LagBytes
		}
		last := "-"
		if f.LastSend != nil {
			last = time.Since(*f.LastSend).Round(time.Second).String() + " ago"
		}
		lastErr := cmpOr(f.Error, f.LastError, "-")
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d frames, %s\t%s\t%s\n", f.Name, state, len(f.Files), bytesText(lag),
			bytesText(f.Spool.Bytes), f.Spool.UnackedFrames, bytesText(f.Spool.UnackedBytes), last, oneLine(lastErr))
	}
	_ = tw.Flush()
	g := rep.SpoolGlobal
	bound := "no global bound"
	if g.MaxBytes > 0 {
		bound = "global bound " + bytesText(g.MaxBytes)
	}
	fmt.Fprintf(w, "spool: %s in all flows (%s)", bytesText(g.Bytes), bound)
	if g.OrphanBytes > 0 {
		fmt.Fprintf(w, "; removed flows keep %s (not counted; restore the flow to ship it, or delete its directory)", bytesText(g.OrphanBytes))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLOW\tFILE\tPOSITION\tSIZE\tLAG")
	for _, f := range rep.Flows {
		for _, fs := range f.Files {
			size := fmt.Sprint(fs.Size)
			if fs.Size < 0 {
				size = "gone"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", f.Name, fs.Path, fs.Position, size, bytesText(fs.LagBytes))
		}
	}
	_ = tw.Flush()
}

func cmpOr(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
