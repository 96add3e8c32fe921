package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// watchHangup turns SIGHUP into reload requests until ctx is done. Requests coalesce: a
// burst of signals while a reload runs gives one more reload, which reads the latest file.
// sig is where main catches SIGHUP from its first instruction on (a signal already in it
// gives a reload as soon as the flows run); nil: watchHangup catches it from now on. With
// --once there is nothing to reload and SIGHUP gets its default action back.
func watchHangup(ctx context.Context, once bool, sig chan os.Signal) <-chan struct{} {
	out := make(chan struct{}, 1)
	if once {
		if sig != nil {
			signal.Reset(syscall.SIGHUP)
		}
		return out
	}
	own := sig == nil
	if own {
		sig = make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGHUP)
	}
	go func() {
		// main's channel stays registered until the process exits: a SIGHUP during the
		// drain after SIGTERM is then ignored instead of ending the drain.
		if own {
			defer signal.Stop(sig)
		}
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
