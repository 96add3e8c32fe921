package supervisor

import (
	"context"
	"os"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/kinship-agent/kinship/config"
	"github.com/kinship-agent/kinship/internal/awsconf"
	"github.com/kinship-agent/kinship/internal/cloudwatch"
	"github.com/kinship-agent/kinship/internal/flow"
)

// startCloudWatch starts publishing the Kinesis Agent's CloudWatch metrics when
// metrics.cloudwatch.enabled (the default for an agent.json). It runs for the whole process;
// flows opened afterwards are counted (openPipeline). What keeps it from starting (no
// region, say) is logged: metrics are not data, the flows run regardless.
func (s *Supervisor) startCloudWatch() {
	c := s.cfg.Metrics.CloudWatch
	if !c.Enabled || s.cw != nil {
		return
	}
	if s.awsCfg == nil {
		ac, err := awsconf.Load(s.ctx, s.cfg.AWS)
		if err != nil {
			s.log.Error("CloudWatch metrics are not published", "err", err)
			return
		}
		s.awsCfg = &ac
	}
	instance := ""
	if c.TagInstance {
		instance = s.instanceTag()
	}
	p := cloudwatch.New(cloudwatch.Options{
		Client: cloudwatch.NewClient(*s.awsCfg, c.Endpoint), Namespace: c.Namespace, Interval: c.Interval.D(),
		Instance: instance, Errors: s.set.CloudWatchErrors(), Logger: s.log.With("component", "cloudwatch"),
	})
	// Its own context: the flows stop first, then the last interval is published (Wait).
	ctx, cancel := context.WithCancel(context.WithoutCancel(s.ctx))
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	s.cw, s.stopCW = p, func() { cancel(); <-done }
	s.log.Info("publishing CloudWatch metrics", "namespace", c.Namespace, "interval", c.Interval.D(),
		"endpoint", c.Endpoint, "instance", instance)
}

// stopCloudWatch publishes what the last interval gathered and stops publishing.
func (s *Supervisor) stopCloudWatch() {
	if s.stopCW != nil {
		s.stopCW()
		s.stopCW = nil
	}
}

// countForCloudWatch has a flow's requests and file errors counted for CloudWatch.
func (s *Supervisor) countForCloudWatch(fc config.Flow, deps *flow.Deps) {
	if s.cw == nil {
		return
	}
	deps.Destination = s.cw.Wrap(fc, deps.Destination)
	s.cw.Watch(fc, deps.Metrics)
}

// instanceTag is the Instance dimension's value, as the Kinesis Agent's tagInstance has it:
// the EC2 instance id, else the host name.
func (s *Supervisor) instanceTag() string {
	ctx, cancel := context.WithTimeout(s.ctx, imdsTimeout)
	defer cancel()
	id, err := instanceID(ctx, imds.New(imds.Options{}))
	if err == nil && id != "" {
		return id
	}
	host, herr := os.Hostname()
	s.log.Warn("CloudWatch tag_instance: no instance id from IMDS; the host name stands for it", "err", err, "host", host)
	if herr != nil {
		return ""
	}
	return host
}
