package spool

import (
	"context"
	"testing"
	"time"
)

// BenchmarkAppend measures Append of 1 MiB payloads into the page cache with the default
// group commit, with a commit after (nearly) every frame, and with no fsync at all (which
// still commits every 16 MiB: the bound of the in-memory copy of unsynced bytes). The
// -shared cases use AppendShared with a cache, as the agent does: the spool keeps the
// payload by reference instead of copying it.
func BenchmarkAppend(b *testing.B) {
	cases := []struct {
		name      string
		interval  time.Duration
		syncBytes int64
		shared    bool
	}{
		{"group-commit", 0, 0, false},
		{"fsync-tiny-interval", time.Microsecond, -1, false},
		{"no-fsync", -1, -1, false},
		{"group-commit-shared", 0, 0, true},
		{"no-fsync-shared", -1, -1, true},
	}
	payload := payloadFor(1, 1<<20)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			opts := Options{Dir: b.TempDir(), FsyncInterval: c.interval, SyncBytes: c.syncBytes}
			appendFn := func(s *Spool) func(context.Context, []byte) (uint64, error) { return s.Append }
			if c.shared {
				opts.CacheBytes = 1 // each frame leaves the cache at once; none goes back anywhere
				appendFn = func(s *Spool) func(context.Context, []byte) (uint64, error) { return s.AppendShared }
			}
			if c.interval < 0 {
				opts.SegmentBytes = 1 << 40 // a roll would fsync
			}
			s, err := Open(opts)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			add := appendFn(s)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := add(ctx, payload); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkNext measures reading durable 1 MiB frames back (and acking them).
func BenchmarkNext(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir(), FsyncInterval: -1, SyncBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	payload := payloadFor(1, 1<<20)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.StopTimer()
	for range b.N {
		if _, err := s.Append(ctx, payload); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Sync(); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	for range b.N {
		f, err := s.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Ack(f.Seq); err != nil {
			b.Fatal(err)
		}
	}
}
