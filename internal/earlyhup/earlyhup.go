// Package earlyhup catches SIGHUP from the moment the process starts.
//
// SIGHUP's default action ends a process, and systemd counts that as a clean exit:
// Restart=on-failure does not bring the agent back. logrotate's postrotate sends it at any
// time, the first milliseconds after a start included, and initializing the packages the
// agent links takes milliseconds before main runs. Go initializes packages in dependency
// order, then by import path; this one imports only os/signal and syscall, so its init runs
// right after theirs, about a millisecond into the start, before the agent's other packages
// and the heavy ones (net/http, the AWS SDK, Prometheus).
//
// It holds the agent's one package-level variable and its one init function, on purpose: a
// signal's disposition belongs to the process, and nothing main creates exists that early.
package earlyhup

import (
	"os"
	"os/signal"
	"syscall"
)

var caught = make(chan os.Signal, 1)

func init() { signal.Notify(caught, syscall.SIGHUP) }

// Signals returns the channel SIGHUPs are delivered to since the process started. It holds
// one: a burst coalesces, as reload requests do.
func Signals() chan os.Signal { return caught }
