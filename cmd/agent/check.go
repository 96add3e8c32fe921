package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/preflight"
)

// serviceUser is the unit's User=; check takes it as the default --as-user when run as root.
const serviceUser = "kinship"

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig, "configuration file (YAML, or the Kinesis Agent's agent.json)")
	asUser := fs.String("as-user", "", `check file and state_dir access as this user (name or UID[:GID]); default: "kinship" when run as root and it exists, else yourself`)
	asJSON := fs.Bool("json", false, "print the results as one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var rep preflight.Report
	cfg, err := config.Load(*path)
	if err != nil {
		rep = preflight.ConfigFailures(err)
	} else {
		spec := *asUser
		if spec == "" && os.Geteuid() == 0 {
			if _, err := user.Lookup(serviceUser); err == nil {
				spec = serviceUser
			}
		}
		var u *preflight.User
		if spec != "" {
			lu, err := preflight.LookupUser(spec)
			if err != nil {
				return usageError{fmt.Errorf("--as-user: %w", err)}
			}
			u = &lu
		}
		rep = preflight.Run(ctx, preflight.Options{
			Config: cfg,
			User:   u,
			AWS: func(ctx context.Context) (*preflight.Clients, error) {
				return preflight.NewClients(ctx, cfg.AWS)
			},
		})
	}
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if rep.Failed() {
		return checkFailed{}
	}
	return nil
}

// checkFailed exits 1; the FAIL lines already said why.
type checkFailed struct{}

func (checkFailed) Error() string { return "some checks failed (the FAIL lines say what to do)" }
