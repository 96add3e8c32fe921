#!/usr/bin/env bash
# Whole-agent spool drain: how long `kinship run --once` takes to ship a spool holding SIZE
# bytes of log lines (1 GiB) into the discard destination, with nothing left to read.
#   1. fill: `kinship run` with a kinesis destination on a closed 127.0.0.1 port (it never
#      acknowledges, so every record stays in the spool), until the flow has read the whole
#      file (kinship_read_lag_bytes 0 and kinship_bytes_read_total = the file's size on
#      /metrics); then SIGTERM, which makes the spool durable and saves the file positions.
#   2. drain: the same flow name (same spool and positions) with `discard: {}` instead, timed
#      with `kinship run --once`: the file is already read, so it only empties the spool.
# The spool was just written, so it is read back from the page cache (and from disk only as
# far as the kernel wrote it back). Reported, not asserted.
#   SIZE=1073741824 BENCH_DIR=bench/out COMPRESSIONS="none s2" ./bench/drain.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-1073741824}
DIR=${BENCH_DIR:-bench/out}
KINSHIP=${KINSHIP:-./kinship}
COMPRESSIONS=${COMPRESSIONS:-none s2}
PORT=${METRICS_PORT:-19781}
mkdir -p "$DIR"
ABS=$(cd "$DIR" && pwd)
LOG="$ABS/bench-$SIZE.log"
[[ -f "$LOG" && $(stat -c %s "$LOG") -gt $((SIZE - 4096)) ]] || go run ./bench/gen -o "$LOG" -size "$SIZE" -format access
BYTES=$(stat -c %s "$LOG")
STATE="$ABS/drain-state"
PID=
cleanup() {
	[[ -z ${KEEP:-} ]] || return 0
	[[ -z $PID ]] || kill "$PID" 2>/dev/null || true
	rm -rf "$STATE"
}
trap cleanup EXIT

# A port nothing listens on: bind one, note it, let it go.
closed_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

config() { # compression destination-yaml
	cat <<YAML
state_dir: $STATE
aws: {region: us-east-1, endpoint: "http://127.0.0.1:$DEAD"}
metrics: {listen: "127.0.0.1:$PORT"}
flows:
  - name: drain
    paths: ["$LOG"]
    batch: {max_bytes: 1MiB}
    spool: {compression: $1, max_bytes: 4GiB}
$2
YAML
}

metric() { # name: the flow's value, or empty
	curl -fsS "http://127.0.0.1:$PORT/metrics" 2>/dev/null | awk -v n="$1" '$1 ~ "^"n"\\{" && $1 ~ /flow="drain"/ { print $2 }' || true
}

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_EC2_METADATA_DISABLED=true
for c in $COMPRESSIONS; do
	rm -rf "$STATE"
	mkdir -p "$STATE"
	DEAD=$(closed_port)
	config "$c" "    kinesis: {stream: never-acknowledged}" >"$ABS/drain-fill.yaml"
	"$KINSHIP" run --config "$ABS/drain-fill.yaml" --log-level error 2>"$ABS/drain-fill.err" &
	PID=$!
	start=$(date +%s)
	while :; do
		read_bytes=$(metric kinship_bytes_read_total)
		lag=$(metric kinship_read_lag_bytes)
		[[ -n $read_bytes && -n $lag ]] && awk -v r="$read_bytes" -v b="$BYTES" -v l="$lag" 'BEGIN { exit !(r+0 >= b && l+0 == 0) }' && break
		kill -0 "$PID" 2>/dev/null || { echo "fill: agent exited" >&2; cat "$ABS/drain-fill.err" >&2; exit 1; }
		(($(date +%s) - start < 1800)) || { echo "fill: timed out" >&2; exit 1; }
		sleep 1
	done
	kill -TERM "$PID"
	wait "$PID" || true
	PID=
	fill_s=$(($(date +%s) - start))
	spool_bytes=$(du -sb "$STATE/flows/drain/spool" | cut -f1)
	unacked() { "$KINSHIP" status --config "$ABS/drain.yaml" 2>/dev/null | grep -m1 -o '[0-9]* frames, [0-9.]* [KMG]*i*B' || true; }

	config "$c" "    discard: {}" >"$ABS/drain.yaml"
	before=$(unacked)
	/usr/bin/time -f "%e %U %S %M" -o "$ABS/drain.time" "$KINSHIP" run --config "$ABS/drain.yaml" --once --log-level warn >/dev/null 2>"$ABS/drain.err" ||
		{ cat "$ABS/drain.err" >&2; exit 1; }
	after=$(unacked) # the drained segments are deleted at the next start, hence no du here
	read -r w u s r <"$ABS/drain.time"
	awk -v c="$c" -v w="$w" -v u="$u" -v s="$s" -v r="$r" -v b="$BYTES" -v sb="$spool_bytes" -v before="$before" -v after="$after" -v f="$fill_s" 'BEGIN {
		printf "drain %-5s %7.1f MiB of logs in %7.1f MiB of spool: %6.2f s, %7.1f MB/s of logs (%6.1f MB/s of spool), %5.2f CPU s (%.2f CPU s/GB of logs), %6.1f MiB peak RSS; unacked before: %s, after: %s; fill took %ds\n",
			c, b/1048576, sb/1048576, w, b/1e6/w, sb/1e6/w, u+s, (u+s)/(b/1e9), r/1024, before, after, f }'
done
