package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// watchHangup turns SIGHUP into reload requests until ctx is done. Requests coalesce: a
// burst of signals while a reload runs gives one more reload, which reads the latest file.
// With --once there is nothing to reload and SIGHUP keeps its default action.
func watchHangup(ctx context.Context, once bool) <-chan struct{} {
	out := make(chan struct{}, 1)
	if once {
		return out
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}
