package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/internal/supervisor"
)

// cmdRun runs the agent. hup holds the SIGHUPs caught since the process started (nil: cmdRun
// catches them itself from now on).
func cmdRun(ctx context.Context, args []string, stderr io.Writer, hup chan os.Signal) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig, "configuration file (YAML, or the Kinesis Agent's agent.json)")
	once := fs.Bool("once", false, "read every matched file to its end, ship it all, then exit")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file (benchmarks)")
	memProfile := fs.String("memprofile", "", "write an allocation profile to this file on exit (benchmarks)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stopProfiles, err := startProfiles(*cpuProfile, *memProfile)
	if err != nil {
		return err
	}
	defer stopProfiles()
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		log.Warn("config: "+w, "config", *path)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	set := metrics.New(reg)

	sup := supervisor.New(ctx, cfg, set, log, *once)
	sup.ExportBudget()
	if err := sup.StartAll(); err != nil {
		return err
	}

	stopMetrics, err := sup.ServeMetrics(reg)
	if err != nil {
		return err
	}
	defer stopMetrics()

	log.Info("kinship starting", "version", version, "config", *path, "flows", len(cfg.Flows), "state_dir", cfg.StateDir, "once", *once)
	reloads := watchHangup(ctx, *once, hup)
	if *once && isTerminal(stderr) {
		stopProgress := startProgress(stderr, reg, toRead(cfg))
		defer stopProgress()
	}
	stopNotify := notifySystemd(ctx, log, sup.Alive)
	err = sup.Wait(reloads, func() { sup.Reload(*path) })
	stopNotify()
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		log.Info("kinship stopped", "reason", context.Cause(ctx))
	} else {
		log.Info("kinship finished")
	}
	return nil
}

// startProfiles starts the optional CPU profile; the returned func stops it and writes the
// allocation profile.
func startProfiles(cpu, mem string) (func(), error) {
	var cpuFile *os.File
	if cpu != "" {
		f, err := os.Create(cpu)
		if err != nil {
			return nil, fmt.Errorf("cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("cpuprofile: %w", err)
		}
		cpuFile = f
	}
	return func() {
		if cpuFile != nil {
			pprof.StopCPUProfile()
			_ = cpuFile.Close()
		}
		if mem != "" {
			if f, err := os.Create(mem); err == nil {
				runtime.GC() // the profile shows the heap as of the last GC: make that now
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				_ = f.Close()
			}
		}
	}, nil
}
