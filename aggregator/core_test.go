package aggregator

import (
	"errors"
	"strings"
	"testing"
)

// A fixed key that Kinesis would refuse (or that the aggregator would have to cut, sending
// the lines somewhere else than configured) is refused the same way whether it is the key of
// every record or the fallback of keys taken from the lines, and CheckPartitionKey (for
// configuration) says so before either is built.
func TestFixedAndFallbackKeysFollowOneRule(t *testing.T) {
	for _, tt := range []struct {
		name string
		key  string
		ok   bool
	}{
		{"256 bytes", strings.Repeat("k", 256), true},
		{"257 bytes", strings.Repeat("k", 257), false},
		{"200 two-byte characters", strings.Repeat("é", 200), false},
		{"invalid UTF-8", "key-\xff", false},
		{"random", "random", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			errCheck := CheckPartitionKey(tt.key)
			a, errFixed := New(Options{PartitionKey: tt.key}, discardOut{})
			if a != nil {
				_ = a.Close()
			}
			s, errFallback := NewSharded(KeyedOptions{Key: JSONFieldKey("k"), Fallback: tt.key}, discardOut{})
			if s != nil {
				_ = s.Close()
			}
			for what, err := range map[string]error{"CheckPartitionKey": errCheck, "New": errFixed, "NewSharded fallback": errFallback} {
				if (err == nil) != tt.ok {
					t.Errorf("%s(%q): err %v, want ok=%v", what, tt.key, err, tt.ok)
				}
			}
		})
	}
}

// The host name as a key: a failure is wrapped, and an empty name is an error that says so
// (not a formatted nil error).
func TestHostKeyErrors(t *testing.T) {
	failed := errors.New("uname failed")
	_, err := newKeySource("host", func() (string, error) { return "", failed })
	if !errors.Is(err, failed) {
		t.Errorf("hostname failure: err %v does not wrap it", err)
	}
	for _, build := range []func() error{
		func() error { _, err := newKeySource("host", func() (string, error) { return "", nil }); return err },
		func() error {
			s, err := newSharded(KeyedOptions{Key: JSONFieldKey("k"), Fallback: "host"}, discardOut{},
				func() (string, error) { return "", nil })
			if s != nil {
				_ = s.Close()
			}
			return err
		},
	} {
		err := build()
		if err == nil || strings.Contains(err.Error(), "nil") || strings.Contains(err.Error(), "%!") || !strings.Contains(err.Error(), "empty") {
			t.Errorf("empty host name: err %v, want one saying the name is empty", err)
		}
	}
}
