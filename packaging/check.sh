#!/bin/bash
# Checks the packages as an operator's fleet would meet them: builds .deb and .rpm for amd64
# and arm64, lints them (lintian, rpmlint: no errors), lists what rpm sees, verifies the
# systemd unit and its hardening score, checks that builds are reproducible, and installs,
# upgrades, removes and purges the .deb with dpkg in a throwaway root.
#
# Needs (CI installs them): lintian rpm rpmlint python3-magic cpio promtool (Debian's prometheus). Runs as root (CI is root):
# rpmlint runs as user nobody, because it unpacks the rpm with cpio, which writes absolute
# paths into / ; a cpio wrapper keeps them relative as well.
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
pass() { passed=$((passed + 1)); echo "ok: $*"; }
fail() {
	echo "FAIL: $*" >&2
	echo "packaging: $passed passed, 1 failed"
	exit 1
}

for tool in lintian rpm rpmlint dpkg dpkg-deb systemd-analyze cpio runuser promtool; do
	command -v "$tool" >/dev/null || fail "$tool not installed (see .ci/run)"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp" # rpmlint runs as nobody and reads the packages from here

version=$(packaging/version.sh)
upgrade="$version.1" # sorts after $version for dpkg and rpm alike
DIST="$tmp/dist" packaging/build.sh >/dev/null
ARCHES=amd64 DIST="$tmp/again" packaging/build.sh >/dev/null
ARCHES=amd64 VERSION=$upgrade DIST="$tmp/upgrade" packaging/build.sh >/dev/null
deb="$tmp/dist/kinship_${version}-1_amd64.deb"
rpm="$tmp/dist/kinship-${version}-1.x86_64.rpm"
for f in "$deb" "$rpm" "$tmp/dist/kinship_${version}-1_arm64.deb" "$tmp/dist/kinship-${version}-1.aarch64.rpm"; do
	[ -s "$f" ] || fail "build: $f missing"
done
pass "built .deb and .rpm for amd64 and arm64, version $version"

for f in "$deb" "$rpm"; do
	cmp -s "$f" "$tmp/again/$(basename "$f")" || fail "reproducible: $(basename "$f") differs between two builds"
done
pass "two builds of the same commit are byte-identical"

# --- lintian: errors fail, warnings are listed.
# One .deb suffices: the arm64 one differs only in the binary, and lintian takes ~20 s a package.
for f in "$deb"; do
	out=$(lintian --fail-on error --tag-display-limit 0 "$f" 2>&1) || {
		echo "$out"
		fail "lintian: errors in $(basename "$f")"
	}
	echo "$out" | grep -v 'running with root privileges' | sed 's/^/  /' || true
	pass "lintian: no errors in $(basename "$f")"
done

# --- rpmlint as nobody, with cpio kept inside rpmlint's temporary directory.
mkdir -p "$tmp/bin"
printf '#!/bin/sh\nexec %s --no-absolute-filenames "$@"\n' "$(command -v cpio)" >"$tmp/bin/cpio"
chmod 0755 "$tmp/bin" "$tmp/bin/cpio"
for f in "$tmp"/dist/*.rpm; do
	out=$(runuser -u nobody -- env HOME="$tmp" PATH="$tmp/bin:$PATH" \
		rpmlint -c packaging/rpmlint.toml "$f" 2>&1) || {
		echo "$out"
		fail "rpmlint: errors in $(basename "$f")"
	}
	echo "$out" | grep -E ': [EW]: |checked;' | sed 's/^/  /' || true
	echo "$out" | grep -q ' 0 errors' || fail "rpmlint: no summary line for $(basename "$f")"
	pass "rpmlint: no errors in $(basename "$f")"
done

# --- what rpm and dpkg see in the packages.
list=$(rpm -qp --list "$rpm" 2>/dev/null)
for p in /usr/bin/kinship /etc/kinship/kinship.yaml /etc/kinship/conf.d \
	/usr/lib/systemd/system/kinship.service /usr/share/man/man1/kinship.1.gz /usr/share/doc/kinship/copyright \
	/usr/share/kinship/kinship-dashboard.json /usr/share/kinship/kinship-alerts.yml; do
	grep -qx "$p" <<<"$list" || fail "rpm --list: $p missing"
done
pass "rpm -qp --list: binary, config, conf.d, unit, man page, copyright, dashboard, alert rules"
flags=$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm" 2>/dev/null)
grep -qx 'cn /etc/kinship/kinship.yaml' <<<"$flags" || fail "rpm: kinship.yaml not %config(noreplace): $flags"
pass "rpm: /etc/kinship/kinship.yaml is %config(noreplace)"
scripts=$(rpm -qp --scripts "$rpm" 2>/dev/null)
for s in 'preinstall scriptlet' 'postinstall scriptlet' 'preuninstall scriptlet' 'postuninstall scriptlet' \
	'useradd' 'systemctl enable' 'systemctl restart' 'rm -rf "$root/var/lib/kinship"'; do
	grep -qF "$s" <<<"$scripts" || fail "rpm --scripts: '$s' missing"
done
pass "rpm -qp --scripts: pre/post install and uninstall scripts with user creation and systemctl"
dpkg-deb -I "$deb" conffiles | grep -qx /etc/kinship/kinship.yaml || fail "deb: kinship.yaml is not a conffile"
pass "deb: /etc/kinship/kinship.yaml is a conffile"

# --- the unit, in the root of the unpacked package (verify wants ExecStart to exist).
unit="$tmp/unit"
dpkg-deb -x "$deb" "$unit"
mkdir -p "$unit/bin"
cp /bin/kill "$unit/bin/kill"
# The targets the unit orders itself against come from the host's systemd.
cp /usr/lib/systemd/system/*.target "$unit/usr/lib/systemd/system/"
out=$(systemd-analyze verify --man=no --root="$unit" kinship.service 2>&1) || {
	echo "$out"
	fail "systemd-analyze verify"
}
[ -z "$out" ] || {
	echo "$out"
	fail "systemd-analyze verify printed warnings"
}
pass "systemd-analyze verify kinship.service"
out=$(systemd-analyze security --offline=true --root="$unit" --threshold=15 kinship.service 2>&1) || {
	echo "$out"
	fail "systemd-analyze security: exposure above 1.5"
}
pass "systemd-analyze security: $(grep -o 'exposure level.*' <<<"$out")"

# --- dpkg in a throwaway root. dpkg runs the maintainer scripts on the host with DPKG_ROOT
# set (--force-script-chrootless); they must change only files below it.
root="$tmp/root"
mkdir -p "$root"/var/lib/dpkg/{info,updates,triggers} "$root"/etc "$root"/usr/sbin "$root"/var/log
: >"$root/var/lib/dpkg/status"
: >"$root/var/lib/dpkg/available"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:*:19000:0:99999:7:::\n' >"$root/etc/shadow"
printf 'root:x:0:\nadm:x:4:\n' >"$root/etc/group"
printf 'root:*::\nadm:*::\n' >"$root/etc/gshadow"
printf '#!/bin/sh\nexit 1\n' >"$root/usr/sbin/nologin"
chmod 0755 "$root/usr/sbin/nologin"
hostpw=$(sha256sum /etc/passwd /etc/group)
dpkgr() { dpkg --root="$root" --force-script-chrootless --log=/dev/null "$@" </dev/null; }

dpkgr -i "$deb" >"$tmp/dpkg.log" 2>&1 || {
	cat "$tmp/dpkg.log"
	fail "dpkg -i"
}
[ -x "$root/usr/bin/kinship" ] || fail "install: /usr/bin/kinship missing"
grep -q '^kinship:x:[0-9]*:[0-9]*:kinship log shipper:/var/lib/kinship:/usr/sbin/nologin$' "$root/etc/passwd" ||
	fail "install: no system user kinship: $(cat "$root/etc/passwd")"
grep -qE '^adm:x:4:(.*,)?kinship(,|$)' "$root/etc/group" || fail "install: kinship not in adm: $(cat "$root/etc/group")"
[ -L "$root/etc/systemd/system/multi-user.target.wants/kinship.service" ] || fail "install: kinship.service not enabled"
[ -d "$root/etc/kinship/conf.d" ] || fail "install: /etc/kinship/conf.d missing"
[ "$hostpw" = "$(sha256sum /etc/passwd /etc/group)" ] || fail "install: the scripts changed the host's users"
pass "dpkg: installs; user kinship (in adm) created and the unit enabled, below the root only"

# The rules as installed, not only as in the tree.
out=$(promtool check rules "$root/usr/share/kinship/kinship-alerts.yml" 2>&1) || {
	echo "$out"
	fail "promtool check rules /usr/share/kinship/kinship-alerts.yml"
}
python3 -m json.tool "$root/usr/share/kinship/kinship-dashboard.json" >/dev/null || fail "dashboard: not JSON"
pass "installed alert rules pass promtool check rules; the dashboard is JSON"

echo "# the operator's change" >>"$root/etc/kinship/kinship.yaml"
dpkgr -i "$tmp/upgrade/kinship_${upgrade}-1_amd64.deb" >"$tmp/dpkg.log" 2>&1 || {
	cat "$tmp/dpkg.log"
	fail "dpkg upgrade"
}
[ "$(dpkg-query --root="$root" -W -f '${Version}' kinship)" = "$upgrade-1" ] || fail "upgrade: version not $upgrade-1"
"$root/usr/bin/kinship" version | grep -qF "$upgrade" || fail "upgrade: binary is not $upgrade"
grep -q "the operator's change" "$root/etc/kinship/kinship.yaml" || fail "upgrade: kinship.yaml overwritten"
[ "$(grep -c '^kinship:' "$root/etc/passwd")" = 1 ] || fail "upgrade: user kinship duplicated"
pass "dpkg: upgrades to $upgrade, keeping the operator's kinship.yaml"

mkdir -p "$root/var/lib/kinship/flows/app"
echo '{}' >"$root/var/lib/kinship/flows/app/positions.json"
dpkgr --remove kinship >"$tmp/dpkg.log" 2>&1 || {
	cat "$tmp/dpkg.log"
	fail "dpkg --remove"
}
[ ! -e "$root/usr/bin/kinship" ] || fail "remove: binary still there"
[ -f "$root/var/lib/kinship/flows/app/positions.json" ] || fail "remove: state deleted (only purge may)"
[ -f "$root/etc/kinship/kinship.yaml" ] || fail "remove: configuration deleted (only purge may)"
pass "dpkg: removes the package, keeps configuration and state"

dpkgr --purge kinship >"$tmp/dpkg.log" 2>&1 || {
	cat "$tmp/dpkg.log"
	fail "dpkg --purge"
}
[ ! -e "$root/var/lib/kinship" ] || fail "purge: /var/lib/kinship still there"
[ ! -e "$root/etc/kinship/kinship.yaml" ] || fail "purge: kinship.yaml still there"
[ ! -L "$root/etc/systemd/system/multi-user.target.wants/kinship.service" ] || fail "purge: unit still enabled"
# After a purge dpkg forgets the package (dpkg-query fails) or lists it as not installed.
if st=$(dpkg-query --root="$root" -W -f '${db:Status-Abbrev}' kinship 2>/dev/null); then
	[[ $st == [up]n* ]] || fail "purge: package still known: $st"
fi
pass "dpkg: purge deletes state, configuration and the unit's enablement"

echo "packaging: $passed passed, 0 failed"
