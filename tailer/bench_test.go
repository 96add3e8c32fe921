package tailer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const benchFileBytes = 64 << 20

// benchFile writes a file of 200-byte lines (199 bytes + '\n'), about 64 MiB.
func benchFile(b *testing.B) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.log")
	line := append(bytes.Repeat([]byte("0123456789abcdefghij"), 10)[:199], '\n')
	chunk := bytes.Repeat(line, 5000)
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	for n := 0; n < benchFileBytes; n += len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkReadLines is the tailer's hot path: read, frame, hand each line to a Sink.
func BenchmarkReadLines(b *testing.B) {
	path := benchFile(b)
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	for b.Loop() {
		tl, err := New(Options{Paths: []string{path}, Once: true}, nopSink{})
		if err != nil {
			b.Fatal(err)
		}
		if err := tl.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlainRead is the physical reference: the same file through a plain read loop.
func BenchmarkPlainRead(b *testing.B) {
	path := benchFile(b)
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	buf := make([]byte, readBufferSize)
	for b.Loop() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := f.Read(buf)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		_ = f.Close()
	}
}

// atomicSink counts lines; nothing else, so the benchmark measures the tailer.
type atomicSink struct{ n atomic.Int64 }

func (s *atomicSink) Open(*Source, int64)               {}
func (s *atomicSink) Close(*Source)                     {}
func (s *atomicSink) Line(*Source, []byte, int64) error { s.n.Add(1); return nil }
func (s *atomicSink) waitFor(b *testing.B, n int64) {
	waitUntil(b, func() bool { return s.n.Load() >= n })
}
func waitUntil(b *testing.B, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

// runBench runs a Tailer with production timings until the benchmark ends.
func runBench(b *testing.B, opts Options, sink Sink) {
	b.Helper()
	tl, err := New(opts, sink)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
}

// BenchmarkAppend1000Files: 8 writers append 20 lines of 100 bytes to each of 1,000 files
// in one watched directory per iteration; reports the lines/s the tailer delivers.
func BenchmarkAppend1000Files(b *testing.B) {
	const files, perFile, writers = 1000, 20, 8
	dir := b.TempDir()
	paths := makeFiles(b, dir, files, 1)
	sink := &atomicSink{}
	runBench(b, Options{Paths: []string{filepath.Join(dir, "*.log")}}, sink)
	sink.waitFor(b, files)
	fds := make([]*os.File, files)
	for i, p := range paths {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		fds[i] = f
	}
	line := append(bytes.Repeat([]byte("x"), 99), '\n')
	want := int64(files)
	var lines int64
	start := time.Now()
	for b.Loop() {
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for range perFile {
					for i := w; i < files; i += writers {
						if _, err := fds[i].Write(line); err != nil {
							b.Error(err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		want += files * perFile
		lines += files * perFile
		sink.waitFor(b, want)
	}
	b.ReportMetric(float64(lines)/time.Since(start).Seconds(), "lines/s")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdle10000Files: 10,000 watched files that nobody writes; reports the process's CPU
// time over 10 s of idleness (KINSHIP_BENCH_IDLE sets another window; getrusage, so it
// includes the safety-net polls at the default 10 s interval), scaled to 60 s, with peak RSS
// and the live heap.
func BenchmarkIdle10000Files(b *testing.B) {
	const files = 10000
	dir := b.TempDir()
	makeFiles(b, dir, files, 3)
	sink := &atomicSink{}
	poll, _ := time.ParseDuration(os.Getenv("KINSHIP_BENCH_POLL")) // to isolate the safety-net poll's share
	runBench(b, Options{Paths: []string{filepath.Join(dir, "*.log")}, PollInterval: poll}, sink)
	sink.waitFor(b, files*3)
	time.Sleep(time.Second) // the rescan after the watches were added
	window := 10 * time.Second
	if w, err := time.ParseDuration(os.Getenv("KINSHIP_BENCH_IDLE")); err == nil {
		window = w // e.g. 60s: a whole cycle of cheap polls and one full sweep
	}
	var used time.Duration
	for b.Loop() {
		before := cpuTime(b)
		time.Sleep(window)
		used += cpuTime(b) - before
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(used.Seconds()/float64(b.N)*float64(time.Minute/window), "cpu-s/60s")
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-rss-MiB")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
}
