package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/awsconf"
	"github.com/kinship-agent/kinship/internal/flow"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/shipper"
)

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig, "configuration file (YAML)")
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

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	set := metrics.New(reg)

	var awsCfg *aws.Config
	flows := make([]*flow.Flow, 0, len(cfg.Flows))
	for _, fc := range cfg.Flows {
		dst, err := destination(ctx, cfg, fc, &awsCfg)
		if err != nil {
			return fmt.Errorf("flow %s: %w", fc.Name, err)
		}
		f, err := flow.New(fc, flow.Deps{Dir: cfg.FlowDir(&fc), Destination: dst, Metrics: set.Flow(fc.Name), Logger: log})
		if err != nil {
			return err
		}
		flows = append(flows, f)
	}

	if cfg.Metrics.Listen != "" {
		srv, _, err := serveMetricsOn(cfg.Metrics.Listen, reg, log)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}

	log.Info("kinship starting", "version", version, "config", *path, "flows", len(flows), "state_dir", cfg.StateDir, "once", *once)
	errs := make([]error, len(flows))
	var wg sync.WaitGroup
	for i, f := range flows {
		wg.Go(func() { errs[i] = f.Run(ctx, *once) })
	}
	stopNotify := notifySystemd(ctx, log, flowsAlive(flows))
	wg.Wait()
	stopNotify()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if ctx.Err() != nil {
		log.Info("kinship stopped", "reason", context.Cause(ctx))
	} else {
		log.Info("kinship finished")
	}
	return nil
}

func destination(ctx context.Context, cfg *config.Config, fc config.Flow, awsCfg **aws.Config) (shipper.Destination, error) {
	switch {
	case fc.Discard != nil:
		return shipper.Discard{}, nil
	case fc.Kinesis != nil:
		if *awsCfg == nil {
			c, err := awsconf.Load(ctx, cfg.AWS)
			if err != nil {
				return nil, err
			}
			*awsCfg = &c
		}
		client := shipper.NewKinesisClient(**awsCfg, awsconf.KinesisOptions(cfg.AWS))
		return shipper.NewKinesis(client, fc.Kinesis.Stream, shipper.Limits{
			MaxRecordBytes:  int(fc.Kinesis.MaxRecordBytes),
			MaxRequestBytes: int(fc.Kinesis.MaxRequestBytes),
		}), nil
	}
	return nil, fmt.Errorf("no destination configured")
}

// serveMetricsOn serves /metrics and /healthz on addr and returns the address it listens on.
func serveMetricsOn(addr string, reg *prometheus.Registry, log *slog.Logger) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return srv, ln.Addr().String(), nil
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
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				_ = f.Close()
			}
		}
	}, nil
}
