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
	printDifferences(stdout, *path, cfg.Differences)
	fmt.Fprintf(stdout, "%s: ok (%d flows)\n", *path, len(cfg.Flows))
	return nil
}

// printDifferences lists, for an agent.json, what kinship will do differently from the
// Kinesis Agent, one line per flow and key, so that an operator switches with open eyes.
// Information only: the exit status does not change.
func printDifferences(w io.Writer, path string, ds []config.Difference) {
	if len(ds) == 0 {
		return
	}
	fmt.Fprintf(w, "%s: differences from the Kinesis Agent (docs/migrating.md):\n", path)
	for _, d := range ds {
		fmt.Fprintf(w, "  %s\n", d)
	}
}

type silentError struct{}

func (silentError) Error() string { return "configuration is not valid" }

var errValidate error = silentError{}
