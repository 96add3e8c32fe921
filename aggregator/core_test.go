package aggregator

import (
	"bytes"
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

// Both packers keep a line of MaxLineBytes whole and cut a longer one to MaxLineBytes, the
// terminator included, counting it once; the record still fits MaxRecordBytes with its key.
func TestLinesCutToWhatFitsWithTerminator(t *testing.T) {
	const maxRecord = 8 << 10
	const term = "[cut]"
	for _, keyed := range []bool{false, true} {
		m := Metrics{}.withDefaults()
		out := &collector{}
		opts := Options{MaxRecordBytes: maxRecord, Aggregate: true, Metrics: m, TruncatedTerminator: term}
		var a interface {
			Add(uint32, []byte, int64) error
			Close() error
			MaxLineBytes() int
		}
		var err error
		want := MaxUserRecordBytes(maxRecord, RandomKeyBytes)
		if keyed {
			want = MaxKeyedUserRecordBytes(maxRecord)
			a, err = NewSharded(KeyedOptions{Options: opts, Key: JSONFieldKey("k")}, out)
		} else {
			a, err = New(opts, out)
		}
		if err != nil {
			t.Fatal(err)
		}
		if a.MaxLineBytes() != want {
			t.Fatalf("keyed %v: MaxLineBytes %d, want %d", keyed, a.MaxLineBytes(), want)
		}
		whole := bytes.Repeat([]byte("w"), want)
		long := bytes.Repeat([]byte("l"), want+1)
		for i, l := range [][]byte{whole, long} {
			if err := a.Add(0, l, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		for _, r := range out.records() {
			if len(r.Data)+len(r.PartitionKey) > maxRecord {
				t.Errorf("keyed %v: record of %d bytes with its key", keyed, len(r.Data)+len(r.PartitionKey))
			}
			urs, _, _ := Deaggregate(r.Data, r.PartitionKey)
			for _, u := range urs {
				got = append(got, u.Data)
			}
		}
		wantCut := append(bytes.Repeat([]byte("l"), want-len(term)), term...)
		if len(got) != 2 || !bytes.Equal(got[0], whole) || !bytes.Equal(got[1], wantCut) {
			t.Errorf("keyed %v: %d lines; want the first whole, the second cut to %d ending %q", keyed, len(got), want, term)
		}
		if n := counterValue(t, m.LinesTruncated); n != 1 {
			t.Errorf("keyed %v: %d lines counted as truncated, want 1", keyed, n)
		}
	}
}
