#!/usr/bin/env bash
# Installs what the tests run for real, and only what is missing, so that `make test` works on
# a brand-new machine: Debian packages (logrotate for the rotation torture test; sqlite3 to
# write the Kinesis Agent's checkpoint databases the import tests read; lintian, rpm,
# rpmlint, python3-magic, cpio and systemd's systemd-analyze for the packaging checks; prometheus
# for promtool, which checks the alerting rules) and the
# npm test peers (kinesalite, aws-kinesis-agg) from internal/testenv/node/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v logrotate >/dev/null || [ -x /usr/sbin/logrotate ] || need+=(logrotate)
command -v sqlite3 >/dev/null || need+=(sqlite3)
for tool in lintian rpm rpmlint cpio; do
	command -v "$tool" >/dev/null || need+=("$tool")
done
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v promtool >/dev/null || need+=(prometheus)
python3 -c 'import magic' 2>/dev/null || need+=(python3-magic)
if ((${#need[@]})); then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	echo "test-deps: installing Debian packages: ${need[*]}"
	$sudo apt-get update
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${need[@]}"
fi

lock=internal/testenv/node/package-lock.json
stamp=internal/testenv/node/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
	npm ci --prefix internal/testenv/node --no-audit --no-fund
	touch "$stamp"
fi
