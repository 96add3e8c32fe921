package spool

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/kinship-agent/kinship/aggregator"
)

// The benchmarks in this file feed bench/spool.sh; they are reported, not asserted. Knobs:
//
//	SPOOL_BENCH_DIR            where spools are written (default: the test's temp dir); the
//	                           script points it at the disk it also measures with dd
//	SPOOL_BENCH_ACCESS_LOG     a file of access-log lines (bench/gen) to build payloads from
//	SPOOL_BENCH_JSON_LOG       a file of JSON lines (bench/gen -format json)
//	SPOOL_BENCH_DRAIN_BYTES    payload bytes BenchmarkDrain fills the spool with [1 GiB]
//
// Without the files, payloads come from logPayload, which writes the same two formats.

func benchDir(b *testing.B) string {
	root := os.Getenv("SPOOL_BENCH_DIR")
	if root == "" {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(root, "spoolbench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// benchPayloads returns 16 distinct spool payloads of about 1 MiB: KPL aggregates of access
// or JSON log lines, as the agent appends them.
func benchPayloads(b *testing.B, json bool) [][]byte {
	const n, size = 16, 1 << 20
	env := "SPOOL_BENCH_ACCESS_LOG"
	if json {
		env = "SPOOL_BENCH_JSON_LOG"
	}
	path := os.Getenv(env)
	if path == "" {
		out := make([][]byte, n)
		for i := range out {
			out[i] = logPayload(json, uint64(i), size)
		}
		return out
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var out [][]byte
	var lines [][]byte
	got := 0
	for len(out) < n && sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
		if got += len(sc.Bytes()) + 4; got >= size {
			out = append(out, aggregator.EncodeAggregate(fmt.Sprintf("%032x", len(out)), "", lines))
			lines, got = nil, 0
		}
	}
	if len(out) < n {
		b.Fatalf("%s: too short for %d payloads of %d bytes", path, n, size)
	}
	return out
}

// BenchmarkCodec measures compressing and decompressing log payloads with each codec, the
// way the spool does it (one payload per frame), and reports the ratio.
func BenchmarkCodec(b *testing.B) {
	for _, kind := range []string{"access", "json"} {
		payloads := benchPayloads(b, kind == "json")
		for _, codec := range []Compression{CompressS2, CompressZstd} {
			var z codecs
			defer z.close()
			var raw, stored int
			zs := make([][]byte, len(payloads))
			for i, p := range payloads {
				var scratch []byte
				c, used := z.compress(codec, &scratch, p)
				if used != codec {
					b.Fatalf("%s did not shrink a log payload", codec)
				}
				zs[i] = bytes.Clone(c)
				raw += len(p)
				stored += len(c)
			}
			ratio := float64(raw) / float64(stored)
			b.Run(kind+"/"+codec.String()+"/compress", func(b *testing.B) {
				b.SetBytes(int64(raw / len(payloads)))
				var scratch []byte
				i := 0
				for b.Loop() {
					z.compress(codec, &scratch, payloads[i%len(payloads)])
					i++
				}
				b.ReportMetric(ratio, "ratio")
			})
			b.Run(kind+"/"+codec.String()+"/decompress", func(b *testing.B) {
				b.SetBytes(int64(raw / len(payloads)))
				outs := make([][]byte, len(payloads))
				for i, p := range payloads {
					outs[i] = make([]byte, len(p))
				}
				i := 0
				for b.Loop() {
					k := i % len(payloads)
					if err := z.decompress(codec, outs[k], zs[k]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

// BenchmarkAppendDisk measures Append of log payloads (half access, half JSON) to the disk
// in SPOOL_BENCH_DIR, with the default group commit and with no fsync at all, per codec.
// MB/s counts payload bytes before compression; disk-MB/s what reached the files.
func BenchmarkAppendDisk(b *testing.B) {
	payloads := append(benchPayloads(b, false), benchPayloads(b, true)...)
	for _, fsync := range []string{"group-fsync", "no-fsync"} {
		for _, codec := range []Compression{CompressNone, CompressS2, CompressZstd} {
			b.Run(fsync+"/"+codec.String(), func(b *testing.B) {
				opts := Options{Dir: benchDir(b), Compression: codec, CompressBacklog: -1}
				if fsync == "no-fsync" {
					opts.FsyncInterval, opts.SyncBytes, opts.SegmentBytes = -1, -1, 1<<40 // a roll would fsync
				}
				s, err := Open(opts)
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				b.SetBytes(int64(len(payloads[0])))
				i := 0
				for b.Loop() {
					if _, err := s.Append(ctx, payloads[i%len(payloads)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
				if fsync != "no-fsync" {
					if err := s.Sync(); err != nil { // the last group commit belongs to the run
						b.Fatal(err)
					}
				}
				el := b.Elapsed()
				b.ReportMetric(float64(s.Stats().Bytes)/1e6/el.Seconds(), "disk-MB/s")
				b.StopTimer()
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// BenchmarkDrain fills a spool with SPOOL_BENCH_DRAIN_BYTES of log payloads (not timed) and
// times reading every frame back with Next and acking it, which is the spool's share of
// draining into the discard destination: from the page cache (just written), decompressing,
// no network. Run it with -benchtime 1x.
func BenchmarkDrain(b *testing.B) {
	total := int64(1 << 30)
	if v := os.Getenv("SPOOL_BENCH_DRAIN_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		total = n
	}
	payloads := append(benchPayloads(b, false), benchPayloads(b, true)...)
	for _, codec := range []Compression{CompressNone, CompressS2, CompressZstd} {
		b.Run(codec.String(), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				s, err := Open(Options{Dir: benchDir(b), Compression: codec, CompressBacklog: -1, FsyncInterval: -1, SyncBytes: -1})
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				var raw int64
				for i := 0; raw < total; i++ {
					p := payloads[i%len(payloads)]
					if _, err := s.Append(ctx, p); err != nil {
						b.Fatal(err)
					}
					raw += int64(len(p))
				}
				if err := s.Sync(); err != nil {
					b.Fatal(err)
				}
				onDisk := s.Stats().Bytes
				last := s.LastSeq()
				b.StartTimer()
				start := time.Now()
				for {
					f, err := s.Next(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if err := s.Ack(f.Seq); err != nil {
						b.Fatal(err)
					}
					if f.Seq == last {
						break
					}
				}
				took := time.Since(start)
				b.StopTimer()
				b.ReportMetric(took.Seconds()*float64(1<<30)/float64(raw), "s/GiB")
				b.ReportMetric(float64(raw)/1e6/took.Seconds(), "MB/s")
				b.ReportMetric(float64(onDisk)/float64(1<<20), "disk-MiB")
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
