#!/usr/bin/env bash
# Runs a command and prints the peaks of its anonymous memory (heap, stacks: what the agent
# allocates) and of its file-backed pages (the binary's own code and data, shared with the page
# cache), sampled from /proc/PID/status every 5 ms. /usr/bin/time's "peak RSS" (what
# bench/pipeline.sh reports) is about their sum; the split says which one a change moved.
#   ./bench/rsssplit.sh ./kinship run --config bench/out/bench.yaml --once --log-level warn
set -euo pipefail
[[ $# -gt 0 ]] || { echo "usage: $0 command [args...]" >&2; exit 2; }
"$@" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
anon=0 file=0
while kill -0 "$pid" 2>/dev/null; do
	while read -r key value _; do
		case $key in
		RssAnon:) ((value > anon)) && anon=$value ;;
		RssFile:) ((value > file)) && file=$value ;;
		esac
	done <"/proc/$pid/status" 2>/dev/null || true
	sleep 0.005
done
status=0
wait "$pid" || status=$?
trap - EXIT
awk -v a="$anon" -v f="$file" -v s="$status" 'BEGIN { printf "peak RssAnon %.1f MiB, peak RssFile %.1f MiB (exit %d)\n", a/1024, f/1024, s }'
exit "$status"
