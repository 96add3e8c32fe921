package supervisor

import (
	"log/slog"
	"testing"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/flow"
)

// shipFlow is a pipeline that answers FileShipped as the test says.
type shipFlow struct {
	fakeFlow
	st flow.FileShipStatus
}

func (f *shipFlow) FileShipped(path string) flow.FileShipStatus { return f.st }

// delete_after_shipped asks the other flows: a file another flow reads is deleted only once
// that flow shipped it too, and never while that flow does not run.
func TestShippedElsewhereAsksEveryFlowThatReadsTheFile(t *testing.T) {
	cfg := &config.Config{Flows: []config.Flow{
		{Name: "app", Paths: []string{"/var/log/app/*.log"}, DeleteAfterShipped: []string{"/var/log/app/*.log.[0-9]"}},
		{Name: "audit", Paths: []string{"/var/log/app/*.log.1"}},
		{Name: "other", Paths: []string{"/var/log/other/*.log"}},
	}}
	const rotated = "/var/log/app/app.log.1"
	s := New(t.Context(), cfg, nil, slog.New(slog.DiscardHandler), false)
	if ok, why := s.shippedElsewhere(cfg, "app", rotated); ok {
		t.Fatal("shipped, though flow audit reads the file and does not run")
	} else {
		t.Log(why)
	}
	audit := &shipFlow{st: flow.FileShipStatus{Reason: flow.ShipReasonUnacked}}
	other := &shipFlow{st: flow.FileShipStatus{Reason: flow.ShipReasonUnknown}}
	s.flows["audit"] = &runningFlow{cfg: cfg.Flows[1], f: audit, done: make(chan struct{})}
	s.flows["other"] = &runningFlow{cfg: cfg.Flows[2], f: other, done: make(chan struct{})}
	if ok, _ := s.shippedElsewhere(cfg, "app", rotated); ok {
		t.Fatal("shipped, though flow audit has not shipped it")
	}
	audit.st = flow.FileShipStatus{Shipped: true, Reason: flow.ShipReasonShipped}
	if ok, why := s.shippedElsewhere(cfg, "app", rotated); !ok {
		t.Fatalf("not shipped (%s), though audit shipped it and other does not read it", why)
	}
	// A flow whose patterns do not match the file but that read it (under its old name).
	other.st = flow.FileShipStatus{Reason: flow.ShipReasonNotRead}
	if ok, _ := s.shippedElsewhere(cfg, "app", rotated); ok {
		t.Fatal("shipped, though flow other knows the file and has not read it to its end")
	}
}
