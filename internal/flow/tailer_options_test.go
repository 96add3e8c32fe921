package flow

import (
	"testing"
	"time"

	"github.com/kinship-agent/kinship/config"
)

// Every reading option an operator writes reaches the tailer.
func TestTailerOptionsCarryTheReadingKeys(t *testing.T) {
	cfg, err := config.Parse("test.yaml", []byte(`
flows:
  - name: t
    paths: ["/var/log/*.log"]
    discard: {}
    max_line_bytes: 64KiB
    close_inactive: 2m
    partial_line_timeout: 750ms
    skip_header_lines: 1
    truncated_record_terminator: " [cut]"
    multiline: {start_pattern: '^\S', max_bytes: 128KiB, max_lines: 9, timeout: 3s}
`))
	if err != nil {
		t.Fatal(err)
	}
	o := tailerOptions(cfg.Flows[0], nil, nil, nil, false, false)
	if o.MaxLineBytes != 64<<10 || o.CloseInactive != 2*time.Minute || o.PartialLineTimeout != 750*time.Millisecond ||
		o.SkipHeaderLines != 1 || o.TruncatedTerminator != " [cut]" || o.MultilineMaxBytes != 128<<10 ||
		o.MultilineMaxLines != 9 || o.MultilineTimeout != 3*time.Second || o.Multiline == nil {
		t.Fatalf("options %+v", o)
	}
}

// The tailer's line limits are what fits a record when that is less than the configured
// ones (so the tailer's cut, with the terminator, is the only one), and the configured ones
// otherwise.
func TestTailerLineLimitsFitARecord(t *testing.T) {
	cfg, err := config.Parse("test.yaml", []byte(`
flows:
  - name: t
    paths: ["/var/log/*.log"]
    discard: {}
    multiline: {start_pattern: '^\S'}
`))
	if err != nil {
		t.Fatal(err)
	}
	o := tailerOptions(cfg.Flows[0], nil, nil, nil, false, false)
	fitLines(&o, 1000)
	if o.MaxLineBytes != 1000 || o.MultilineMaxBytes != 1000 {
		t.Errorf("limits %d, %d; want both 1000 (what fits a record)", o.MaxLineBytes, o.MultilineMaxBytes)
	}
	o = tailerOptions(cfg.Flows[0], nil, nil, nil, false, false)
	fitLines(&o, 10<<20)
	if o.MaxLineBytes != int(config.DefaultMaxLineBytes) || o.MultilineMaxBytes != int(config.DefaultMaxLineBytes) {
		t.Errorf("limits %d, %d; want both max_line_bytes", o.MaxLineBytes, o.MultilineMaxBytes)
	}
}
