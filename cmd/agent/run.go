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
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/awsconf"
	"github.com/kinship-agent/kinship/internal/metrics"
	"github.com/kinship-agent/kinship/shipper"
)

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
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

	sup := newSupervisor(ctx, cfg, set, log, *once)
	sup.exportBudget()
	if err := sup.startAll(); err != nil {
		return err
	}

	if cfg.Metrics.Listen != "" {
		srv, _, err := serveMetricsOn(cfg.Metrics.Listen, reg, log,
			route{"/healthz", sup.healthHandler(cfg.Metrics.UnhealthyAfter.D())},
			route{"/status", http.HandlerFunc(sup.statusHandler)})
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}

	log.Info("kinship starting", "version", version, "config", *path, "flows", len(cfg.Flows), "state_dir", cfg.StateDir, "once", *once)
	hup := watchHangup(ctx, *once)
	if *once && isTerminal(stderr) {
		stopProgress := startProgress(stderr, reg, toRead(cfg))
		defer stopProgress()
	}
	stopNotify := notifySystemd(ctx, log, sup.alive)
	err = sup.wait(hup, func() { sup.reload(*path) })
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

func destination(ctx context.Context, cfg *config.Config, fc config.Flow, awsCfg **aws.Config) (shipper.Destination, error) {
	switch {
	case fc.Discard != nil:
		return shipper.Discard{}, nil
	case fc.HTTP != nil:
		return httpDestination(fc)
	case fc.Firehose != nil:
		if *awsCfg == nil {
			c, err := awsconf.Load(ctx, cfg.AWS)
			if err != nil {
				return nil, err
			}
			*awsCfg = &c
		}
		api, err := shipper.NewFirehoseAPI(ctx, **awsCfg, fc.Firehose.MaxInFlight, awsconf.FirehoseOptions(cfg.AWS))
		if err != nil {
			return nil, fmt.Errorf("flow %s: %w", fc.Name, err)
		}
		return shipper.NewFirehose(api, fc.Firehose.DeliveryStream), nil
	case fc.Kinesis != nil:
		if *awsCfg == nil {
			c, err := awsconf.Load(ctx, cfg.AWS)
			if err != nil {
				return nil, err
			}
			*awsCfg = &c
		}
		api, err := shipper.NewKinesisAPI(ctx, **awsCfg, shipper.KinesisAPIOptions{
			Protocol: fc.Kinesis.Protocol, Endpoint: cfg.AWS.Endpoint, MaxInFlight: fc.Kinesis.MaxInFlight})
		if err != nil {
			return nil, fmt.Errorf("flow %s: %w", fc.Name, err)
		}
		limits := shipper.Limits{
			MaxRecordBytes:  int(fc.Kinesis.MaxRecordBytes),
			MaxRequestBytes: int(fc.Kinesis.MaxRequestBytes),
		}
		if keysFromLines(fc) {
			// The shard map's ListShards calls go through the SDK's client.
			client := shipper.NewKinesisClient(**awsCfg, awsconf.KinesisOptions(cfg.AWS))
			return shardAwareKinesis(client, api, fc.Kinesis.Stream, limits), nil
		}
		return shipper.NewKinesis(api, fc.Kinesis.Stream, limits), nil
	}
	return nil, fmt.Errorf("no destination configured")
}

// route is one more handler on the metrics server.
type route struct {
	pattern string
	h       http.Handler
}

// serveMetricsOn serves /metrics, /healthz (always "ok" unless a route replaces it) and the
// given routes on addr, and returns the address it listens on.
func serveMetricsOn(addr string, reg *prometheus.Registry, log *slog.Logger, routes ...route) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	health := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	}))
	for _, r := range routes {
		if r.pattern == "/healthz" {
			health = r.h
			continue
		}
		mux.Handle(r.pattern, r.h)
	}
	mux.Handle("/healthz", health)
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
