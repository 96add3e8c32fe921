#!/usr/bin/env bash
# Whole-pipeline benchmark: `kinship run --once` on a file of ~140-byte lines with the spool
# on, next to md5sum and cat of the same file measured in the same run (page cache warm),
# which are the physical reference on this machine. The agent ships to
#   (a) the discard destination,
#   (b) bench/fakekinesis, a fast loopback Kinesis endpoint over TLS (a self-signed
#       certificate the agent trusts through AWS_CA_BUNDLE), once per kinesis.protocol in
#       PROTOCOLS, and
#   (c) kinesalite over TLS (4 shards), on a smaller file of KINESALITE_SIZE bytes since it
#       takes in a hundred MB/s or less (0 skips it): the agent reads it as fast as kinesalite
#       takes it, and what waits longer than fsync_interval the spool writes and reads back,
#       and
#   (d) the same file appended at STEADY_RATE MB/s (default 20; 0 skips it) to a file the agent
#       tails as a service: kinesalite keeps up, the steady state, and
#   (e) a logger appending LOGGER_RATE lines/s (default 20,000; 0 skips it) for LOGGER_SECONDS
#       (default 10), each line its own write(2), to a file the agent tails: kinesalite (and
#       KINSHIP_BASELINE's row, when set).
# After row (b) it prints bench/floor's table: the CPU the work no agent can avoid (reading,
# MD5, SHA-256, AES-GCM, the socket) costs alone on this CPU, the floor of row (b).
# Each row: MB/s, CPU s/GB and peak RSS of the agent alone (/usr/bin/time), and for (b) the
# Kinesis records per GB the endpoint counted (it also checks every aggregate's MD5) or, for
# (c), that the stream holds afterwards (bench/streamcount).
# FORMAT=json reads JSON log lines instead of access-log lines; COMPRESSION sets
# spool.compression (unset: the agent's default); WRITE sets spool.write for every row, and a
# list (WRITE="always backlog") runs the discard row once per mode in the same run.
#   SIZE=1073741824 KINESALITE_SIZE=104857600 PROTOCOLS="cbor json" BENCH_DIR=bench/out \
#   FORMAT=access COMPRESSION=s2 WRITE=backlog KINSHIP_BASELINE=/path/to/older/kinship ./bench/pipeline.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-1073741824}
KINESALITE_SIZE=${KINESALITE_SIZE:-104857600}
PROTOCOLS=${PROTOCOLS:-cbor json}
DIR=${BENCH_DIR:-bench/out}
KINSHIP=${KINSHIP:-./kinship}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd) # absolute: it goes into the agent's configuration
FORMAT=${FORMAT:-access}
LOG="$DIR/bench-$SIZE.log"
[[ $FORMAT == access ]] || LOG="$DIR/bench-$FORMAT-$SIZE.log"
gen() { # path size
	[[ -f "$1" && $(stat -c %s "$1") -gt $(($2 - 4096)) ]] || go run ./bench/gen -o "$1" -size "$2" -format "$FORMAT"
}
gen "$LOG" "$SIZE"
BYTES=$(stat -c %s "$LOG")
LINES=$(wc -l <"$LOG")
cat "$LOG" >/dev/null # warm the page cache

measure() { # prints "wall user sys maxrss_kib" of a command
	/usr/bin/time -f "%e %U %S %M" -o "$DIR/time.out" "$@" >/dev/null 2>"$DIR/cmd.err" || { cat "$DIR/cmd.err" >&2; return 1; }
	cat "$DIR/time.out"
}
report() { # name wall user sys rss [records] (BYTES and LINES of the file read)
	awk -v n="$1" -v w="$2" -v u="$3" -v s="$4" -v r="$5" -v k="${6:-}" -v b="$BYTES" -v l="$LINES" 'BEGIN {
		rec = k == "" ? "        -" : sprintf("%9.0f", k/(b/1073741824))
		printf "%-30s %8.1f MB/s %10.0f lines/s %6.2f CPU s/GiB %7.1f MiB peak RSS %s records/GB  (wall %.2fs, user %.2fs, sys %.2fs)\n",
			n, b/1e6/w, l/w, (u+s)/(b/1073741824), r/1024, rec, w, u, s }'
}
# flow_config destination-yaml: the benchmark's configuration, written to $DIR/bench.yaml.
flow_config() {
	cat >"$DIR/bench.yaml" <<YAML
state_dir: $STATE
flows:
  - name: bench
    paths: ["$LOG"]
    $1
    batch: {max_bytes: ${BATCH_BYTES:-1MiB}}
YAML
	local spool=""
	[[ -z ${COMPRESSION:-} ]] || spool="compression: $COMPRESSION"
	[[ ${MODE:-default} == default ]] || spool="${spool:+$spool, }write: $MODE"
	[[ -z $spool ]] || echo "    spool: {$spool}" >>"$DIR/bench.yaml"
	rm -rf "$STATE"
}
# The agent's AWS environment: dummy static credentials, loopback only, the benchmark's CA.
aws_env() { # endpoint-url
	echo AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_SESSION_TOKEN= AWS_REGION=us-east-1 \
		AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PROFILE= \
		AWS_CA_BUNDLE="$DIR/tls/cert.pem" AWS_ENDPOINT_URL_KINESIS="$1" AWS_ENDPOINT_URL=
}
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

read -r w u s r < <(measure md5sum "$LOG"); report md5sum "$w" "$u" "$s" "$r"; MD5=$w
read -r w u s r < <(measure cat "$LOG"); report cat "$w" "$u" "$s" "$r"

STATE="$DIR/state"
for mode in ${WRITE:-default}; do
	MODE=$mode
	flow_config "discard: {}"
	name="(a) discard"
	[[ $mode == default ]] || name="(a) discard, write $mode"
	read -r w u s r < <(measure "$KINSHIP" run --config "$DIR/bench.yaml" --once --log-level warn); report "$name" "$w" "$u" "$s" "$r"
	awk -v k="$w" -v m="$MD5" -v n="$name" 'BEGIN { printf "%s: kinship at %.0f%% of md5sum'"'"'s speed\n", n, 100*m/k }'
done
MODE=${WRITE:-default}
MODE=${MODE%% *} # the other rows run with the first mode listed

# (b) the fast loopback endpoint, one row per protocol.
mkdir -p "$DIR/tls"
rm -f "$DIR/tls/cert.pem" "$DIR/tls/key.pem" # a fresh certificate each run (it is valid for a day)
go build -o "$DIR/fakekinesis" ./bench/fakekinesis
# fake_row name binary destination-yaml
fake_row() {
	rm -f "$DIR/fk.url"
	"$DIR/fakekinesis" -cert "$DIR/tls/cert.pem" -key "$DIR/tls/key.pem" -url-file "$DIR/fk.url" >"$DIR/fk.stats" &
	FK=$!
	PIDS+=("$FK")
	for _ in $(seq 100); do [[ -s "$DIR/fk.url" ]] && break; sleep 0.1; done
	flow_config "$3"
	# shellcheck disable=SC2046
	read -r w u s r < <(measure env $(aws_env "$(cat "$DIR/fk.url")") "$2" run --config "$DIR/bench.yaml" --once --log-level warn)
	kill -TERM "$FK"
	wait "$FK" || true
	recs=$(sed -n 's/.*"records":\([0-9]*\).*/\1/p' "$DIR/fk.stats")
	report "$1" "$w" "$u" "$s" "$r" "$recs"
	grep -q '"md5_errors":0,' "$DIR/fk.stats" && grep -q '"auth_errors":0,' "$DIR/fk.stats" && grep -q '"bad_requests":0,' "$DIR/fk.stats" ||
		echo "fakekinesis found bad requests: $(cat "$DIR/fk.stats")" >&2
}
for proto in $PROTOCOLS; do
	fake_row "(b) fake kinesis $proto" "$KINSHIP" "kinesis: {stream: bench, protocol: $proto}"
done
# KINSHIP_BASELINE: an older kinship binary (one that has no kinesis.protocol), for a
# before/after row measured in the same run.
[[ -z ${KINSHIP_BASELINE:-} ]] || MODE=default fake_row "(b) fake kinesis baseline" "$KINSHIP_BASELINE" "kinesis: {stream: bench}"

# The floor of row (b): what the hashing, encryption and I/O every byte shipped needs cost
# alone on this CPU, in the same run (bench/floor).
go build -o "$DIR/floor" ./bench/floor
"$DIR/floor" -file "$LOG"

# (c) kinesalite over TLS, on a smaller file.
if [[ $KINESALITE_SIZE -gt 0 ]]; then
	LOG="$DIR/bench-$FORMAT-$KINESALITE_SIZE.log"
	gen "$LOG" "$KINESALITE_SIZE"
	BYTES=$(stat -c %s "$LOG")
	LINES=$(wc -l <"$LOG")
	cat "$LOG" >/dev/null
	go build -o "$DIR/streamcount" ./bench/streamcount
	# start_kinesalite starts kinesalite over TLS with a 4-shard stream "bench": KL is its
	# pid, port where it listens.
	start_kinesalite() {
		rm -f "$DIR/kl.out" # the wait below must not read the previous kinesalite's port
		KINESALITE_TLS_CERT="$DIR/tls/cert.pem" KINESALITE_TLS_KEY="$DIR/tls/key.pem" KINESALITE_STREAMS=bench:4 \
			KINESALITE_KEEP_STDIN=1 node internal/testenv/node/kinesalite.js >"$DIR/kl.out" </dev/null &
		KL=$!
		PIDS+=("$KL")
		for _ in $(seq 300); do [[ -s "$DIR/kl.out" ]] && break; sleep 0.1; done
		port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$DIR/kl.out")
	}
	for proto in $PROTOCOLS; do
		start_kinesalite
		flow_config "kinesis: {stream: bench, protocol: $proto}"
		# shellcheck disable=SC2046
		read -r w u s r < <(measure env $(aws_env "https://127.0.0.1:$port") "$KINSHIP" run --config "$DIR/bench.yaml" --once --log-level warn)
		# shellcheck disable=SC2046
		recs=$(env $(aws_env "https://127.0.0.1:$port") "$DIR/streamcount" -stream bench)
		kill "$KL"
		wait "$KL" 2>/dev/null || true
		report "(c) kinesalite $proto" "$w" "$u" "$s" "$r" "$recs"
	done
	# tail_start file binary: kinesalite, and `binary run` (the service, not --once) tailing
	# file, which starts empty; TIMED is the pid of /usr/bin/time around the agent.
	tail_start() {
		start_kinesalite
		: >"$1"
		local src=$LOG
		LOG=$1
		flow_config "kinesis: {stream: bench}"
		LOG=$src
		# shellcheck disable=SC2046
		env $(aws_env "https://127.0.0.1:$port") /usr/bin/time -f "%e %U %S %M" -o "$DIR/time.out" \
			"$2" run --config "$DIR/bench.yaml" --log-level warn 2>"$DIR/cmd.err" &
		TIMED=$!
		PIDS+=("$TIMED")
	}
	# tail_durable bytes: waits (a minute at most) until positions.json says bytes are durable.
	tail_durable() {
		for _ in $(seq 600); do
			grep -q "\"offset\":$1[,}]" "$STATE/flows/bench/positions.json" 2>/dev/null && break
			sleep 0.1
		done
	}
	# tail_stop stops the agent and kinesalite: r is the agent's peak RSS, recs what the stream
	# holds.
	tail_stop() {
		pkill -TERM -P "$TIMED" || true
		wait "$TIMED" || { cat "$DIR/cmd.err" >&2; }
		read -r _ _ _ r <"$DIR/time.out"
		# shellcheck disable=SC2046
		recs=$(env $(aws_env "https://127.0.0.1:$port") "$DIR/streamcount" -stream bench)
		kill "$KL"
		wait "$KL" 2>/dev/null || true
	}
	# (d) kinesalite at a rate it takes: the same file appended STEADY_RATE MB/s at a time to a
	# file the agent tails, so that nothing becomes a backlog: the steady state operators run,
	# next to (c), where the whole file is there at once. The agent stops once positions.json
	# says every byte is durable; MB/s is then the pace set, CPU s/GB and peak RSS are the
	# agent's.
	if [[ ${STEADY_RATE:-20} -gt 0 ]]; then
		STEADY="$DIR/steady.log"
		tail_start "$STEADY" "$KINSHIP"
		chunks=$(((BYTES + 1048575) / 1048576))
		pace=$(awk -v r="${STEADY_RATE:-20}" 'BEGIN { printf "%.3f", 1.048576/r }')
		for ((i = 0; i < chunks; i++)); do
			dd if="$LOG" of="$STEADY" bs=1M skip="$i" count=1 oflag=append conv=notrunc status=none
			sleep "$pace"
		done
		tail_durable "$BYTES"
		tail_stop
		read -r _ u s _ <"$DIR/time.out"
		report "(d) kinesalite, ${STEADY_RATE:-20} MB/s" "$(awk -v b="$BYTES" -v r="${STEADY_RATE:-20}" 'BEGIN { print b/1e6/r }')" "$u" "$s" "$r" "$recs"
	fi
	# (e) kinesalite fed by a logger that flushes every line (logback's immediateFlush, the
	# default): each line is its own write(2), so an inotify event, and this row is the cost
	# of waking up, next to (d), where a MiB comes at once. The CPU counted is the agent's
	# from the logger's start until positions.json says every byte is durable (/proc/PID/stat):
	# at 4 MB/s the start-up would be a tenth of the row. Peak RSS is the whole run's.
	# logger_row name binary
	logger_row() {
		local logged="$DIR/logger.log" agent="" size t0 t1 lb tck
		tail_start "$logged" "$2"
		for _ in $(seq 100); do
			agent=$(pgrep -P "$TIMED" || true)
			[[ -n $agent ]] && break
			sleep 0.05
		done
		sleep 1 # started: stream described, connections open
		read -r u0 s0 < <(awk '{ print $14, $15 }' "/proc/$agent/stat")
		size=$((${LOGGER_RATE:-20000} * ${LOGGER_SECONDS:-10} * 140)) # lines average 140 bytes
		t0=$(date +%s.%N)
		"$DIR/gen" -o "$logged" -size "$size" -rate "${LOGGER_RATE:-20000}" -format "$FORMAT"
		t1=$(date +%s.%N)
		lb=$(stat -c %s "$logged")
		tail_durable "$lb"
		read -r u1 s1 < <(awk '{ print $14, $15 }' "/proc/$agent/stat")
		tail_stop
		tck=$(getconf CLK_TCK)
		BYTES=$lb LINES=$(wc -l <"$logged") report "$1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b-a }')" \
			"$(awk -v a="$u0" -v b="$u1" -v t="$tck" 'BEGIN { print (b-a)/t }')" \
			"$(awk -v a="$s0" -v b="$s1" -v t="$tck" 'BEGIN { print (b-a)/t }')" "$r" "$recs"
	}
	if [[ ${LOGGER_RATE:-20000} -gt 0 ]]; then
		go build -o "$DIR/gen" ./bench/gen
		logger_row "(e) kinesalite, logger ${LOGGER_RATE:-20000} lines/s" "$KINSHIP"
		[[ -z ${KINSHIP_BASELINE:-} ]] || logger_row "(e) baseline" "$KINSHIP_BASELINE"
	fi
fi
rm -rf "$STATE"
