// Package supervisor runs the agent's set of flows for `kinship run`: it builds each flow
// (destination, shard map, EC2 metadata, spool), starts and stops them, applies reloads, holds
// the global spool budget, reports spools of removed flows, and serves /metrics, /healthz and
// /status. cmd/agent parses flags, builds the logger and the registry, catches signals and
// calls it:
//
//	sup := supervisor.New(ctx, cfg, metrics.New(reg), log, once)
//	sup.ExportBudget()
//	if err := sup.StartAll(); err != nil { ... } // every flow opens, or none runs
//	stop, err := sup.ServeMetrics(reg)            // metrics.listen; warns when it is every interface
//	defer stop()
//	err = sup.Wait(hup, func() { sup.Reload(path) }) // until ctx ends or no flow runs
//
// A reload is reconcile: start what is desired and missing (new flows, flows whose settings
// or state directory changed, flows that failed), stop what runs and is no longer desired,
// leave the rest untouched (config.Flow.Equal decides). A stopped flow's positions and spool
// stay on disk, so its next version resumes where it stopped; the old version is stopped and
// has closed its spool before the new one opens it.
//
// Opening a flow waits up to LockWait for its spool directory while another process holds
// it: the agent killed a moment ago may not have released it yet.
//
// Concurrency: StartAll, Wait and Reload (called from Wait) run on the caller's goroutine,
// one at a time; each flow's Run has a goroutine of its own, which records its end in the
// runningFlow and wakes Wait through the exited channel. The HTTP handlers (/healthz,
// /status) and Alive (the systemd watchdog) run on other goroutines and only read the running
// set, under mu. mu is never held while a flow starts or stops.
package supervisor
