// Command kinship is the log-shipping agent: `kinship run` tails the configured files and
// ships them; `validate`, `consume` and `version` are the tools around it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/kinship-agent/kinship/internal/earlyhup"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const defaultConfig = "/etc/kinship/kinship.yaml"

func main() {
	oneProcUnlessSet()
	// SIGHUP has been caught since before main (see earlyhup): one that arrived while the
	// agent starts waits in the channel and becomes a reload once the flows run.
	os.Exit(runCommand(os.Args[1:], os.Stdout, os.Stderr, earlyhup.Signals()))
}

// oneProcUnlessSet runs Go code on one thread at a time unless the operator set GOMAXPROCS.
// The agent's work is a chain of short hand-offs (reader, aggregator, MD5, spool, shipper,
// net/http), and with a P per core the idle ones spin looking for work and park and wake
// threads at every hand-off: on 2 cores, the same runs took 0.76 against 1.14 CPU s/GiB
// into discard, 1.9 against 2.1 to a fast Kinesis endpoint over TLS and 10–15% less at a
// steady 20 MB/s, with 39% fewer context switches (bench/README.md). One core moves
// 500 MB/s to Kinesis, more than a host's logs need; the agent also never takes more than
// one of its host's cores, which the applications it serves need. GOMAXPROCS in the
// environment (e.g. the systemd unit's Environment=) still wins: a host shipping a
// backlog through many flows at once may want more. In main, not runCommand: tests run
// commands in their own process.
func oneProcUnlessSet() {
	if _, set := os.LookupEnv("GOMAXPROCS"); !set {
		runtime.GOMAXPROCS(1)
	}
}

const usage = `kinship ships log files to Amazon Kinesis.

Usage:
  kinship run      --config FILE [--once]   run the agent (the default command)
  kinship validate --config FILE            check a configuration; exit 0 or print file:line errors
  kinship check    --config FILE [--as-user USER] [--json]
                                            preflight: configuration, credentials, streams, file access,
                                            state_dir, inotify and open-file limits; exit 0 or FAIL lines
  kinship consume  --stream NAME [--from beginning|latest|TIME] [--follow] [--shard ID] [--grep REGEX]
                   [--format raw|json] [--endpoint URL | --config FILE]
                                            read a stream, de-aggregate, print one user record per line
  kinship status   --config FILE [--json]   per flow and file: position, size, lag, spool backlog, last error
  kinship status   --config FILE --file PATH [--json]
                                            exit 0 if every line of PATH is acknowledged by the destination, 1 if not
  kinship import-checkpoints --config FILE [--from DB] [--force]
                                            resume files where the Amazon Kinesis Agent's checkpoints say
  kinship version                           print the version

Run "kinship COMMAND -h" for a command's options.
`

// runMain runs a command as main would, for tests: SIGHUP is caught only once `run` asks
// for it.
func runMain(args []string, stdout, stderr io.Writer) int {
	return runCommand(args, stdout, stderr, nil)
}

// runCommand runs one command. hup, when not nil, receives the SIGHUPs caught since the
// process started; commands other than `run` give SIGHUP its default action back (a hung-up
// terminal ends `consume --follow`).
func runCommand(args []string, stdout, stderr io.Writer, hup chan os.Signal) int {
	cmd := "run"
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		cmd = "help"
	} else if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	if cmd != "run" && hup != nil {
		signal.Reset(syscall.SIGHUP)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "run":
		err = cmdRun(ctx, args, stderr, hup)
	case "validate":
		err = cmdValidate(args, stdout, stderr)
	case "check":
		err = cmdCheck(ctx, args, stdout, stderr)
	case "consume":
		err = cmdConsume(ctx, args, stdout, stderr)
	case "status":
		err = cmdStatus(ctx, args, stdout, stderr)
	case "import-checkpoints":
		err = cmdImportCheckpoints(args, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "kinship %s\n", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "kinship: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "kinship %s: %v\n", cmd, err)
			return 2
		}
		fmt.Fprintf(stderr, "kinship %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

type usageError struct{ error }

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format %q: want text or json", format)}
}
