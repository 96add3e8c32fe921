#!/usr/bin/env bash
# The agent's main job, locally and without an AWS account: start kinesalite (a Kinesis API
# implementation) on a loopback port, create a stream, write a sample log, let kinship ship
# it, and read the stream back with `kinship consume`. Run it through `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."

KINSHIP=${KINSHIP:-./kinship}
DEMO=$(mktemp -d "${TMPDIR:-/tmp}/kinship-demo.XXXXXX")
LINES=${LINES_TO_WRITE:-1000}

cleanup() {
	local rc=$? # the demo's own result: stopping the helpers below must not replace it
	if [[ -n "${AGENT_PID:-}" ]]; then kill "$AGENT_PID" 2>/dev/null || true; wait "$AGENT_PID" 2>/dev/null || true; fi
	if [[ -n "${KINESALITE_PID:-}" ]]; then kill "$KINESALITE_PID" 2>/dev/null || true; wait "$KINESALITE_PID" 2>/dev/null || true; fi
	rm -rf "$DEMO"
	exit "$rc"
}
trap cleanup EXIT

echo "==> starting kinesalite on 127.0.0.1 with stream 'demo' (2 shards)"
KINESALITE_STREAMS=demo:2 KINESALITE_KEEP_STDIN=1 node internal/testenv/node/kinesalite.js >"$DEMO/kinesalite.out" 2>&1 </dev/null &
KINESALITE_PID=$!
for _ in $(seq 100); do
	grep -q port "$DEMO/kinesalite.out" 2>/dev/null && break
	sleep 0.1
done
PORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$DEMO/kinesalite.out")
[[ -n "$PORT" ]] || { cat "$DEMO/kinesalite.out"; echo "kinesalite did not start" >&2; exit 1; }
ENDPOINT="http://127.0.0.1:$PORT"

# Dummy credentials and no instance-metadata lookups: nothing leaves this machine.
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_KINESIS

mkdir -p "$DEMO/logs" "$DEMO/state"
cat >"$DEMO/kinship.yaml" <<YAML
state_dir: $DEMO/state
aws:
  region: us-east-1
  endpoint: $ENDPOINT
flows:
  - name: app
    paths: ["$DEMO/logs/*.log"]
    kinesis:
      stream: demo
YAML

echo "==> writing $LINES lines to $DEMO/logs/app.log"
for i in $(seq 1 "$LINES"); do
	printf '2026-11-27T12:00:00Z INFO request id=%06d path=/api/items status=200 took=%dms\n' "$i" $((i % 97))
done >"$DEMO/logs/app.log"

echo "==> kinship run --once (reads every file to its end, ships, exits)"
"$KINSHIP" run --config "$DEMO/kinship.yaml" --once

echo "==> kinship run in the background; appending 3 more lines while it runs"
"$KINSHIP" run --config "$DEMO/kinship.yaml" 2>"$DEMO/agent.log" &
AGENT_PID=$!
sleep 1
for i in 1 2 3; do
	printf '2026-11-27T12:00:01Z INFO live line %d\n' "$i" >>"$DEMO/logs/app.log"
done
sleep 2.5
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || true
AGENT_PID=

echo "==> kinship consume --stream demo"
"$KINSHIP" consume --stream demo --endpoint "$ENDPOINT" >"$DEMO/consumed.txt"
head -n 3 "$DEMO/consumed.txt"
echo "   ..."
tail -n 4 "$DEMO/consumed.txt"
GOT=$(wc -l <"$DEMO/consumed.txt")
WANT=$((LINES + 3))
echo "==> $GOT of $WANT lines arrived in the stream"
sort "$DEMO/logs/app.log" >"$DEMO/want.sorted"
sort "$DEMO/consumed.txt" >"$DEMO/got.sorted"
if cmp -s "$DEMO/want.sorted" "$DEMO/got.sorted"; then
	echo "==> every line arrived exactly once"
else
	echo "==> the stream differs from the log:" >&2
	diff "$DEMO/want.sorted" "$DEMO/got.sorted" | head >&2
	exit 1
fi
