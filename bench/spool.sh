#!/usr/bin/env bash
# Spool benchmarks, all in one run on one disk (the one holding BENCH_DIR), so the figures
# can be compared with each other:
#   - raw sequential write of that disk: dd bs=1M conv=fdatasync
#   - spool Append MB/s with the default group fsync and with no fsync, per codec
#   - compression ratio and speed of s2 and zstd on access-log and JSON-log payloads
#     (KPL aggregates of ~1 MiB of bench/gen lines, as the agent appends them)
#   - time to drain DRAIN_BYTES (1 GiB) of spool: Next + Ack of every frame, what the
#     discard destination leaves of the pipeline; the spool was just written, so it reads
#     from the page cache
# Reported, not asserted.
#   BENCH_DIR=bench/out APPEND_FRAMES=512 DRAIN_BYTES=1073741824 ./bench/spool.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${BENCH_DIR:-bench/out}
APPEND_FRAMES=${APPEND_FRAMES:-512}
DRAIN_BYTES=${DRAIN_BYTES:-1073741824}
mkdir -p "$DIR/spool"
ABS=$(cd "$DIR" && pwd)
trap 'rm -rf "$ABS/spool"' EXIT

for f in access json; do
	[[ -s "$ABS/lines-$f.log" ]] || go run ./bench/gen -o "$ABS/lines-$f.log" -size $((64 << 20)) -format "$f"
done
go test -c -o "$ABS/spool.test" ./spool/
df -h "$ABS" | tail -1 | awk '{ print "disk: " $1 " mounted on " $6 }'

echo "== raw disk write: dd bs=1M count=$APPEND_FRAMES conv=fdatasync"
dd if=/dev/zero of="$ABS/spool/dd.bin" bs=1M count="$APPEND_FRAMES" conv=fdatasync 2>&1 | tail -1
rm -f "$ABS/spool/dd.bin"

export SPOOL_BENCH_DIR="$ABS/spool" SPOOL_BENCH_ACCESS_LOG="$ABS/lines-access.log" SPOOL_BENCH_JSON_LOG="$ABS/lines-json.log"
export SPOOL_BENCH_DRAIN_BYTES="$DRAIN_BYTES"
run() { (cd spool && "$ABS/spool.test" -test.run '^$' -test.timeout 60m "$@") | grep -E '^Benchmark' ; }

echo "== spool Append, ~1 MiB log payloads ($APPEND_FRAMES frames each; MB/s before compression, disk-MB/s written)"
run -test.bench 'AppendDisk' -test.benchtime "${APPEND_FRAMES}x"
echo "== codecs on log payloads (ratio = raw/compressed)"
run -test.bench 'Codec' -test.benchtime 2s
echo "== drain $DRAIN_BYTES payload bytes: Next + Ack of every frame (s/GiB of payload)"
run -test.bench 'Drain' -test.benchtime 1x
