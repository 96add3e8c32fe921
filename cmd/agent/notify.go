package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// readyPoll is how often readiness is checked until every flow runs.
const readyPoll = 50 * time.Millisecond

// notifySystemd speaks the sd_notify protocol for Type=notify units (a no-op without
// NOTIFY_SOCKET): READY=1 once alive reports every flow running, WATCHDOG=1 every half
// WATCHDOG_USEC but only while alive still says so, so that systemd restarts an agent whose
// pipeline is wedged although the process lives, and STOPPING=1 when ctx ends (SIGTERM) or
// the returned stop is called. stop waits for the notifier's goroutine.
func notifySystemd(ctx context.Context, log *slog.Logger, alive func(time.Time) bool) (stop func()) {
	// Read, not unset: daemon.SdNotify reads NOTIFY_SOCKET on every call.
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return func() {}
	}
	watchdog, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog: bad WATCHDOG_USEC; not petting it", "err", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	send := func(state string) {
		if _, err := daemon.SdNotify(false, state); err != nil {
			log.Warn("sd_notify failed", "state", state, "err", err)
		}
	}
	go func() {
		defer close(done)
		defer send(daemon.SdNotifyStopping)
		poll := time.NewTicker(readyPoll)
		for !alive(time.Now()) {
			select {
			case <-ctx.Done():
				poll.Stop()
				return
			case <-poll.C:
			}
		}
		poll.Stop()
		send(daemon.SdNotifyReady)
		log.Info("systemd notified: ready", "watchdog", watchdog)
		if watchdog <= 0 {
			<-ctx.Done()
			return
		}
		pet := time.NewTicker(watchdog / 2)
		defer pet.Stop()
		warned := false
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-pet.C:
				if alive(now) {
					send(daemon.SdNotifyWatchdog)
					warned = false
				} else if !warned {
					log.Error("a flow is not alive; no longer petting the systemd watchdog")
					warned = true
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}
