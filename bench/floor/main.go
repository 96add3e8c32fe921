// Command floor measures, on this machine and in one run, the CPU that the work every byte
// shipped to Kinesis over TLS cannot avoid costs on its own: reading the file (pread from the
// page cache), finding the line ends, the MD5 of the KPL aggregate (crypto/md5, and md5-simd
// with 8 and 16 messages side by side), the SHA-256 of the request body that SigV4 signs, the
// AES-128-GCM sealing of TLS records, and writing to a loopback TCP socket (read by a child
// process, so that only the sender's CPU counts, as for the agent). Each row runs on one P, as
// the agent does, over the same number of bytes, and reports CPU seconds (user + sys of this
// process) per GiB. Their sum is a floor for the agent's CPU s/GiB at a Kinesis endpoint
// (bench/pipeline.sh row (b)) that no change to the agent's own code can go below.
//
//	go run ./bench/floor -file bench/out/bench-536870912.log
//
// The rows are per GiB of the file; the agent hashes, encrypts and sends its request bodies,
// about 5 % more bytes (KPL and CBOR framing).
package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/sha256"
	"flag"
	"fmt"
	"hash"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	md5simd "github.com/minio/md5-simd"
)

const (
	aggregateBytes = 1 << 20   // one KPL aggregate, the default batch.max_bytes
	tlsRecordBytes = 16 << 10  // the largest TLS record
	gatherBytes    = 128 << 10 // what the agent's TLS connection writes per syscall (kinesisapi.gatherConn)
	readBytes      = 256 << 10 // the tailer's read size
)

// sinkEnv makes the process (this command or its test binary) the child that reads the
// loopback socket of the TCP row.
const sinkEnv = "KINSHIP_FLOOR_SINK"

func main() {
	if os.Getenv(sinkEnv) != "" {
		runSink()
		return
	}
	file := flag.String("file", "", "a log file of at least 16 MiB, read once first so that the page cache holds it")
	flag.Parse()
	if *file == "" {
		log.Fatal("floor: -file is required")
	}
	runtime.GOMAXPROCS(1)
	if err := report(os.Stdout, *file); err != nil {
		log.Fatal(err)
	}
}

// report measures every row over the file's size (whole MiB) and prints the table.
func report(w io.Writer, file string) error {
	data, size, err := load(file)
	if err != nil {
		return err
	}
	rows := []struct {
		name      string
		mandatory bool
		run       func() error
	}{
		{"read (pread 256 KiB, page cache)", true, func() error { return readFile(file) }},
		{"line ends (bytes.IndexByte)", false, func() error { lineEnds(data, size); return nil }},
		{"MD5, crypto/md5", false, func() error { hashEach(data, size, md5.New()); return nil }},
		{"MD5, md5-simd, 8 side by side (the agent)", true, func() error { return md5Lanes(data, size, 8) }},
		{"MD5, md5-simd, 16 side by side", false, func() error { return md5Lanes(data, size, 16) }},
		{"SHA-256 (SigV4 payload hash)", true, func() error { hashEach(data, size, sha256.New()); return nil }},
		{"AES-128-GCM, 16 KiB TLS records", true, func() error { return seal(data, size) }},
		{"TCP write to loopback, 128 KiB", true, func() error { return tcpWrite(data, size) }},
	}
	fmt.Fprintf(w, "%-45s %9s %11s\n", fmt.Sprintf("one P, %d MiB each", size>>20), "GB/s", "CPU s/GiB")
	var floor float64
	for _, r := range rows {
		wall, cpu, err := measure(r.run)
		if err != nil {
			return fmt.Errorf("floor: %s: %w", r.name, err)
		}
		perGiB := cpu / (float64(size) / (1 << 30))
		mark := ""
		if r.mandatory {
			floor += perGiB
			mark = " *"
		}
		fmt.Fprintf(w, "%-45s %9.2f %11.3f%s\n", r.name, float64(size)/wall/1e9, perGiB, mark)
	}
	fmt.Fprintf(w, "%-45s %9s %11.3f  (%.3f CPU s/GB)\n", "floor: the rows marked *", "", floor, floor*1e9/(1<<30))
	return nil
}

// load reads the file once (warming the page cache for the read row) and keeps its first
// 16 MiB as the data every other row works on, size bytes in all.
func load(name string) ([]byte, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, fmt.Errorf("floor: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("floor: %w", err)
	}
	size := st.Size() &^ (aggregateBytes - 1)
	if size < 16*aggregateBytes {
		return nil, 0, fmt.Errorf("floor: %s: want at least 16 MiB", name)
	}
	data := make([]byte, 16*aggregateBytes)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, 0, fmt.Errorf("floor: read %s: %w", name, err)
	}
	if _, err := io.Copy(io.Discard, f); err != nil {
		return nil, 0, fmt.Errorf("floor: read %s: %w", name, err)
	}
	return data, size, nil
}

func measure(run func() error) (wall, cpu float64, err error) {
	runtime.GC()
	before, start := cpuSeconds(), time.Now()
	err = run()
	return time.Since(start).Seconds(), cpuSeconds() - before, err
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatalf("floor: getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// each calls fn with the 1 MiB aggregates of data in turn until size bytes went through it.
func each(data []byte, size int64, fn func(p []byte)) {
	for done := int64(0); done < size; done += aggregateBytes {
		off := done % int64(len(data))
		fn(data[off : off+aggregateBytes])
	}
}

func readFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, readBytes)
	for off := int64(0); ; {
		n, err := f.ReadAt(buf, off)
		off += int64(n)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func lineEnds(data []byte, size int64) {
	lines := 0
	each(data, size, func(p []byte) {
		for i := bytes.IndexByte(p, '\n'); i >= 0; i = bytes.IndexByte(p, '\n') {
			p = p[i+1:]
			lines++
		}
	})
	runtime.KeepAlive(lines)
}

// hashEach hashes each aggregate with h, one message each.
func hashEach(data []byte, size int64, h hash.Hash) {
	var sum [sha256.Size]byte
	each(data, size, func(p []byte) {
		h.Reset()
		h.Write(p)
		h.Sum(sum[:0])
	})
}

// md5Lanes hashes lanes aggregates at a time, one goroutine each, as the aggregator's hash
// workers do.
func md5Lanes(data []byte, size int64, lanes int) error {
	srv := md5simd.NewServer()
	defer srv.Close()
	hashers := make([]md5simd.Hasher, lanes)
	for i := range hashers {
		hashers[i] = srv.NewHash()
		defer hashers[i].Close()
	}
	batch := make([][]byte, 0, lanes)
	var wg sync.WaitGroup
	flush := func() {
		for i, p := range batch {
			wg.Add(1)
			go func(h md5simd.Hasher, p []byte) {
				defer wg.Done()
				h.Reset()
				h.Write(p)
				h.Sum(nil)
			}(hashers[i], p)
		}
		wg.Wait()
		batch = batch[:0]
	}
	each(data, size, func(p []byte) {
		if batch = append(batch, p); len(batch) == lanes {
			flush()
		}
	})
	flush()
	return nil
}

// seal encrypts the aggregates as TLS 1.3 records of 16 KiB with AES-128-GCM, the suite Go
// clients and servers pick where the CPU has AES instructions.
func seal(data []byte, size int64) error {
	block, err := aes.NewCipher(make([]byte, 16))
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	nonce := make([]byte, aead.NonceSize())
	out := make([]byte, 0, tlsRecordBytes+aead.Overhead()+1)
	each(data, size, func(p []byte) {
		for ; len(p) > 0; p = p[min(len(p), tlsRecordBytes):] {
			out = aead.Seal(out[:0], nonce, p[:min(len(p), tlsRecordBytes)], nil)
			nonce[len(nonce)-1]++
		}
	})
	return nil
}

// tcpWrite writes the aggregates to a loopback connection read by a child process (runSink),
// 128 KiB per write.
func tcpWrite(data []byte, size int64) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), sinkEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Wait() }()
	line := make([]byte, 64)
	n, err := out.Read(line)
	if err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("sink: %w", err)
	}
	conn, err := net.Dial("tcp", strings.TrimSpace(string(line[:n])))
	if err != nil {
		_ = cmd.Process.Kill()
		return err
	}
	defer conn.Close()
	var werr error
	each(data, size, func(p []byte) {
		for ; len(p) > 0 && werr == nil; p = p[min(len(p), gatherBytes):] {
			_, werr = conn.Write(p[:min(len(p), gatherBytes)])
		}
	})
	return werr
}

func runSink() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr())
	conn, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, conn)
}
