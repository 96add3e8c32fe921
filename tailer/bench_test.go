package tailer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
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
