#!/usr/bin/env bash
# Idle cost: what `kinship run` (the service, not --once) takes from the machine while it
# watches FILES log files that do not change, once it has read them all.
#
# Per layout (LAYOUTS: "dirs" = 100 directories of FILES/100 files, "flat" = one directory
# of FILES files, each file a few ~100-byte lines) and destination (DESTS: "discard", and
# "kinesis" = bench/fakekinesis over TLS, as bench/pipeline.sh runs it), for the agent
# (KINSHIP) and, when KINSHIP_BASELINE names older binaries (space-separated), for each of
# them too in the same run:
#   1. start `kinship run` on a fresh state directory and wait until /metrics shows every
#      byte of every file read, then SETTLE_SECONDS more (the last aggregate ships),
#   2. "idle" row: its CPU seconds (utime + stime from /proc/PID/stat) over IDLE_SECONDS
#      with nothing written, and its RSS at the end,
#   3. "trickle" row: the same over another IDLE_SECONDS while one line a second is
#      appended to each of TRICKLE_FILES of the files (0 skips it).
# Nothing scrapes the agent during a window. Each row: CPU ms per minute, % of one core,
# RSS at the end of the window and the peak since the start (VmHWM). AGENT_FLAGS go to
# `kinship run` (AGENT_FLAGS="--cpuprofile /tmp/idle.prof" with no baseline: a profile of the
# whole run, written when the agent stops).
#   IDLE_SECONDS=60 FILES=10000 LAYOUTS="dirs flat" DESTS="discard kinesis" TRICKLE_FILES=10 \
#   KINSHIP=./kinship KINSHIP_BASELINE=/path/to/older/kinship BENCH_DIR=/tmp/x ./bench/idle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE_SECONDS=${IDLE_SECONDS:-60}
SETTLE_SECONDS=${SETTLE_SECONDS:-5}
FILES=${FILES:-10000}
LAYOUTS=${LAYOUTS:-dirs flat}
DESTS=${DESTS:-discard kinesis}
TRICKLE_FILES=${TRICKLE_FILES:-10}
KINSHIP=${KINSHIP:-./kinship}
BINARIES=("$KINSHIP")
read -r -a baselines <<<"${KINSHIP_BASELINE:-}" # one or more, space-separated
BINARIES+=("${baselines[@]}")
# Everything goes into one temporary directory, removed at exit with every process started.
DIR=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/kinship-idle.XXXXXX")
DIR=$(cd "$DIR" && pwd) # absolute: it goes into the agent's configuration
PIDS=()
# stop pid: end one process this script started and forget it.
stop() {
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	local p kept=()
	for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || kept+=("$p"); done
	PIDS=("${kept[@]}")
}
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
TICKS=$(getconf CLK_TCK)

# make_files layout: FILES files of 3 lines under $DIR/logs; sets PATTERN (the flow's glob)
# and TRICKLED (the files the trickle appends to, spread over the directories).
make_files() {
	rm -rf "$DIR/logs"
	local dirs=1 d f per
	[[ $1 == flat ]] || dirs=100
	per=$((FILES / dirs))
	TRICKLED=()
	for ((d = 0; d < dirs; d++)); do
		mkdir -p "$DIR/logs/d$d"
		for ((f = 0; f < per; f++)); do
			printf '%s\n' \
				"127.0.0.1 - - [07/Dec/2026:12:00:00 +0000] \"GET /d$d/f$f/one HTTP/1.1\" 200 512 \"-\" \"idle-bench\"" \
				"127.0.0.1 - - [07/Dec/2026:12:00:01 +0000] \"GET /d$d/f$f/two HTTP/1.1\" 200 512 \"-\" \"idle-bench\"" \
				"127.0.0.1 - - [07/Dec/2026:12:00:02 +0000] \"GET /d$d/f$f/three HTTP/1.1\" 200 512 \"-\" \"idle-bench\"" \
				>"$DIR/logs/d$d/f$f.log"
		done
	done
	PATTERN="$DIR/logs/*/*.log"
	local i
	for ((i = 0; i < TRICKLE_FILES; i++)); do
		d=$((i * dirs / TRICKLE_FILES))
		f=$((i * per / TRICKLE_FILES))
		TRICKLED+=("$DIR/logs/d$d/f$f.log")
	done
}

# total_bytes: the bytes of every log file now.
total_bytes() { find "$DIR/logs" -name '*.log' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

# metric addr name: the sum of a metric's samples over every flow.
metric() {
	curl -fsS "http://$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%.0f\n", s }'
}

# cpu_ticks pid: user + system clock ticks the process has used (fields 14 and 15 of
# /proc/PID/stat, counted after the ")" that ends the command name).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# rss_kib pid field: VmRSS or VmHWM in KiB.
rss_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# The agent's AWS environment for the kinesis rows: dummy static credentials, loopback only.
aws_env() { # endpoint-url
	echo AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_SESSION_TOKEN= AWS_REGION=us-east-1 \
		AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PROFILE= \
		AWS_CA_BUNDLE="$DIR/tls/cert.pem" AWS_ENDPOINT_URL_KINESIS="$1" AWS_ENDPOINT_URL=
}
if [[ " $DESTS " == *" kinesis "* ]]; then
	mkdir -p "$DIR/tls"
	go build -o "$DIR/fakekinesis" ./bench/fakekinesis
fi

# window name pid: measure the agent over IDLE_SECONDS and print the row.
window() {
	local t0 t1 rss hwm
	t0=$(cpu_ticks "$2")
	sleep "$IDLE_SECONDS"
	t1=$(cpu_ticks "$2")
	rss=$(rss_kib "$2" VmRSS)
	hwm=$(rss_kib "$2" VmHWM)
	awk -v n="$1" -v t=$((t1 - t0)) -v hz="$TICKS" -v s="$IDLE_SECONDS" -v r="$rss" -v h="$hwm" 'BEGIN {
		printf "%-52s %8.0f CPU ms/min %7.3f %% of a core %7.1f MiB RSS (peak %.1f MiB)\n",
			n, t/hz*1000*60/s, 100*t/hz/s, r/1024, h/1024 }'
}

# trickle: one line a second to each of TRICKLED until killed.
trickle() {
	local n=0 f
	while :; do
		for f in "${TRICKLED[@]}"; do
			printf '127.0.0.1 - - [07/Dec/2026:12:00:00 +0000] "GET /trickle/%d HTTP/1.1" 200 512 "-" "idle-bench"\n' "$n" >>"$f"
		done
		n=$((n + 1))
		sleep 1
	done
}

# run_agent layout dest binary: one agent from a fresh state, its idle and trickle rows.
run_agent() {
	local layout=$1 dest=$2 bin=$3 destyaml="discard: {}" envs=() fk="" agent addr want got
	local label
	label="$layout/$dest $(basename "$bin")"
	rm -rf "$DIR/state"
	make_files "$layout" # afresh: the previous agent's trickle grew some
	if [[ $dest == kinesis ]]; then
		rm -f "$DIR/fk.url"
		"$DIR/fakekinesis" -cert "$DIR/tls/cert.pem" -key "$DIR/tls/key.pem" -url-file "$DIR/fk.url" >"$DIR/fk.stats" &
		fk=$!
		PIDS+=("$fk")
		for _ in $(seq 100); do [[ -s "$DIR/fk.url" ]] && break; sleep 0.1; done
		read -r -a envs < <(aws_env "$(cat "$DIR/fk.url")")
		destyaml="kinesis: {stream: bench}"
	fi
	cat >"$DIR/idle.yaml" <<YAML
state_dir: $DIR/state
metrics: {listen: "127.0.0.1:0"}
flows:
  - name: idle
    paths: ["$PATTERN"]
    start_at: beginning
    $destyaml
YAML
	# shellcheck disable=SC2086 # AGENT_FLAGS is a list of flags
	env "${envs[@]}" "$bin" run --config "$DIR/idle.yaml" --log-level info ${AGENT_FLAGS:-} 2>"$DIR/agent.err" &
	agent=$!
	PIDS+=("$agent")
	addr=""
	for _ in $(seq 300); do
		addr=$(sed -n 's/.*msg="metrics listening" addr=\([^ ]*\).*/\1/p' "$DIR/agent.err")
		[[ -n $addr ]] && break
		kill -0 "$agent" 2>/dev/null || { cat "$DIR/agent.err" >&2; return 1; }
		sleep 0.1
	done
	[[ -n $addr ]] || { echo "$label: no metrics address in the agent's log" >&2; return 1; }
	want=$(total_bytes)
	got=0
	local start=$SECONDS
	while ((got < want)); do
		((SECONDS - start < 600)) || { echo "$label: read $got of $want bytes in 600 s" >&2; return 1; }
		sleep 0.5
		kill -0 "$agent" 2>/dev/null || { echo "$label: the agent exited: $(tail -5 "$DIR/agent.err")" >&2; return 1; }
		got=$(metric "$addr" kinship_bytes_read_total) || got=0
	done
	local ready=$((SECONDS - start)) watched
	watched=$(metric "$addr" kinship_files_watched)
	sleep "$SETTLE_SECONDS"
	echo "# $label: $watched files watched, $want bytes read in ~${ready}s"
	window "$label idle" "$agent"
	if ((TRICKLE_FILES > 0)); then
		trickle &
		local tr=$!
		PIDS+=("$tr")
		window "$label trickle ($TRICKLE_FILES lines/s)" "$agent"
		stop "$tr"
	fi
	kill -TERM "$agent"
	wait "$agent" || echo "$label: the agent exited with $?: $(tail -3 "$DIR/agent.err")" >&2
	stop "$agent"
	if [[ -n $fk ]]; then
		stop "$fk"
		grep -q '"md5_errors":0,' "$DIR/fk.stats" && grep -q '"auth_errors":0,' "$DIR/fk.stats" && grep -q '"bad_requests":0,' "$DIR/fk.stats" ||
			echo "fakekinesis found bad requests: $(cat "$DIR/fk.stats")" >&2
	fi
}

echo "# $FILES files, IDLE_SECONDS=$IDLE_SECONDS, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for layout in $LAYOUTS; do
	for dest in $DESTS; do
		for bin in "${BINARIES[@]}"; do
			run_agent "$layout" "$dest" "$bin"
		done
	done
done
