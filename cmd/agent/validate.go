package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/supervisor"
)

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig, "configuration file (YAML, or the Kinesis Agent's agent.json)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		// The errors already read "file:line:column: message", one per line.
		fmt.Fprintln(stderr, err)
		return errValidate
	}
	// Warnings do not fail validation: they name agent.json settings kinship ignores, and
	// a metrics endpoint open to the network.
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "%s: warning: %s\n", *path, w)
	}
	if w := supervisor.ExposureWarning(cfg.Metrics.Listen); w != "" {
		fmt.Fprintf(stderr, "%s: warning: %s\n", *path, w)
	}
	fmt.Fprintf(stdout, "%s: ok (%d flows)\n", *path, len(cfg.Flows))
	return nil
}

type silentError struct{}

func (silentError) Error() string { return "configuration is not valid" }

var errValidate error = silentError{}
