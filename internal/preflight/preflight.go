package preflight

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/kinship-agent/kinship/config"
)

// Level is how a check ended.
type Level int

const (
	OK Level = iota
	Warn
	Fail
)

func (l Level) String() string {
	switch l {
	case Warn:
		return "warn"
	case Fail:
		return "FAIL"
	}
	return "ok"
}

// MarshalText writes the level as the text output does.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// Result is one check's finding.
type Result struct {
	Level   Level  `json:"level"`
	Check   string `json:"check"`             // config, credentials, identity, kinesis, firehose, files, state_dir, inotify, open_files
	Subject string `json:"subject,omitempty"` // the stream, pattern, file or directory checked
	Message string `json:"message"`           // what was found
	Fix     string `json:"fix,omitempty"`     // what to do, for warn and FAIL
}

// Report is every result of one run, in the order the checks ran.
type Report struct {
	Results []Result `json:"results"`
}

func (r *Report) add(l Level, check, subject, msg, fix string) {
	r.Results = append(r.Results, Result{Level: l, Check: check, Subject: subject, Message: msg, Fix: fix})
}

// Failed reports whether any check failed (warnings do not fail a run).
func (r Report) Failed() bool {
	for _, res := range r.Results {
		if res.Level == Fail {
			return true
		}
	}
	return false
}

// WriteText writes one line per result: level, check, subject, message, and what to do.
func (r Report) WriteText(w io.Writer) error {
	for _, res := range r.Results {
		var b strings.Builder
		fmt.Fprintf(&b, "%-4s %s", res.Level, res.Check)
		if res.Subject != "" {
			fmt.Fprintf(&b, " %s", res.Subject)
		}
		fmt.Fprintf(&b, ": %s", res.Message)
		if res.Fix != "" {
			fmt.Fprintf(&b, "; %s", res.Fix)
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes the report as one JSON object: {"ok": bool, "results": [...]}.
func (r Report) WriteJSON(w io.Writer) error {
	res := r.Results
	if res == nil {
		res = []Result{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		OK      bool     `json:"ok"`
		Results []Result `json:"results"`
	}{!r.Failed(), res})
}

// Options say what to check and with what.
type Options struct {
	Config *config.Config
	// User is whose access to files and the state directory is checked: the service user.
	// nil: the user check runs as. When it is the unit's User=, the unit's
	// SupplementaryGroups= are added to its groups, as systemd does.
	User *User
	// AWS builds the clients for the destinations; called only when a flow ships to Kinesis
	// or Firehose. A nil AWS with such flows is a FAIL of the credentials check.
	AWS func(context.Context) (*Clients, error)
	// System is where the host's limits and the unit are read; zero: the real places.
	System System
}

// Run runs every check and returns their results. It writes nothing but a probe file in
// the state directory, removed at once.
func Run(ctx context.Context, o Options) Report {
	var r Report
	cfg := o.Config
	r.add(OK, "config", "", fmt.Sprintf("valid, %d flows", len(cfg.Flows)), "")
	for _, w := range cfg.Warnings {
		r.add(Warn, "config", "", w, "remove the setting or accept that it is ignored")
	}
	unit := loadUnit(o.System)
	u := CurrentUser()
	if o.User != nil {
		u = *o.User
	}
	if unit.found && unit.user != "" && unit.user == u.Name {
		for _, g := range unit.groups {
			if gid, err := lookupGroup(g); err == nil && !containsGID(u.Groups, gid) {
				u.Groups = append(u.Groups, gid)
			}
		}
	}
	if u.UID == 0 {
		r.add(Warn, "files", "", "file and state_dir access is checked as root, who may read and write everything",
			"pass --as-user with the service's user (the unit's User=, kinship by default)")
	}
	checkAWS(ctx, &r, cfg, o.AWS)
	files := checkFiles(&r, cfg, u, unit)
	checkStateDir(&r, cfg, u, unit)
	checkInotify(&r, cfg, files, o.System)
	checkOpenFiles(&r, cfg, files, unit, o.System)
	return r
}

// ConfigFailures turns a configuration that does not load into one FAIL per problem.
func ConfigFailures(err error) Report {
	var r Report
	for _, line := range strings.Split(err.Error(), "\n") {
		r.add(Fail, "config", "", line, "fix the configuration (kinship validate shows the same)")
	}
	return r
}
