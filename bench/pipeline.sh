#!/usr/bin/env bash
# Whole-pipeline benchmark: `kinship run --once` on a file of ~200-byte lines with the
# discard destination and the spool on, next to md5sum and cat of the same file measured in
# the same run (page cache warm), which are the physical reference on this machine.
# FORMAT=json reads JSON log lines instead of access-log lines; COMPRESSION sets
# spool.compression (unset: the agent's default); WRITE sets spool.write, and a list
# (WRITE="always backlog") runs the agent once per mode in the same run.
#   SIZE=1073741824 BENCH_DIR=bench/out FORMAT=access COMPRESSION=s2 WRITE=backlog ./bench/pipeline.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-1073741824}
DIR=${BENCH_DIR:-bench/out}
KINSHIP=${KINSHIP:-./kinship}
mkdir -p "$DIR"
FORMAT=${FORMAT:-access}
LOG="$DIR/bench-$SIZE.log"
[[ $FORMAT == access ]] || LOG="$DIR/bench-$FORMAT-$SIZE.log"
[[ -f "$LOG" && $(stat -c %s "$LOG") -gt $((SIZE - 4096)) ]] || go run ./bench/gen -o "$LOG" -size "$SIZE" -format "$FORMAT"
BYTES=$(stat -c %s "$LOG")
LINES=$(wc -l <"$LOG")
cat "$LOG" >/dev/null # warm the page cache

measure() { # prints "wall user sys maxrss_kib" of a command
	/usr/bin/time -f "%e %U %S %M" -o "$DIR/time.out" "$@" >/dev/null 2>"$DIR/cmd.err" || { cat "$DIR/cmd.err" >&2; return 1; }
	cat "$DIR/time.out"
}
report() { # name wall user sys rss
	awk -v n="$1" -v w="$2" -v u="$3" -v s="$4" -v r="$5" -v b="$BYTES" -v l="$LINES" 'BEGIN {
		printf "%-14s %8.1f MB/s %12.0f lines/s %6.2f CPU s/GB %7.1f MiB peak RSS  (wall %.2fs, user %.2fs, sys %.2fs)\n",
			n, b/1e6/w, l/w, (u+s)/(b/1073741824), r/1024, w, u, s }'
}

read -r w u s r < <(measure md5sum "$LOG"); report md5sum "$w" "$u" "$s" "$r"; MD5=$w
read -r w u s r < <(measure cat "$LOG"); report cat "$w" "$u" "$s" "$r"

STATE="$DIR/state"
for mode in ${WRITE:-default}; do
	rm -rf "$STATE"
	cat >"$DIR/bench.yaml" <<YAML
state_dir: $PWD/$STATE
flows:
  - name: bench
    paths: ["$PWD/$LOG"]
    discard: {}
    batch: {max_bytes: ${BATCH_BYTES:-1MiB}}
YAML
	spool=""
	[[ -z ${COMPRESSION:-} ]] || spool="compression: $COMPRESSION"
	[[ $mode == default ]] || spool="${spool:+$spool, }write: $mode"
	[[ -z $spool ]] || echo "    spool: {$spool}" >>"$DIR/bench.yaml"
	name="kinship --once"
	[[ $mode == default ]] || name="kinship $mode"
	read -r w u s r < <(measure "$KINSHIP" run --config "$DIR/bench.yaml" --once --log-level warn); report "$name" "$w" "$u" "$s" "$r"
	awk -v k="$w" -v m="$MD5" -v n="$name" 'BEGIN { printf "%s runs at %.0f%% of md5sum'"'"'s speed\n", n, 100*m/k }'
	rm -rf "$STATE"
done
