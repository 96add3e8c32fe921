#!/bin/sh
# kinship: before the files are unpacked, on install and on upgrade.
#   deb preinst: install | upgrade OLD | abort-upgrade NEW
#   rpm %pre:    $1 = versions installed afterwards (1 install, 2+ upgrade)
# Creates the system user kinship, in group adm so that it can read /var/log (Debian,
# Ubuntu). DPKG_ROOT is set when dpkg runs this script outside the root it installs into
# (--root with --force-script-chrootless): every change then goes below that root.
set -e
root="${DPKG_ROOT:-}"

case "$1" in
abort-*) exit 0 ;;
esac

# shadow's --prefix edits $root/etc/{passwd,group} without chroot (only needed, and only
# passed, for a foreign root: older useradd lack the option).
prefix=
[ -z "$root" ] || prefix="--prefix $root"

exists() { # exists DATABASE NAME
	if [ -z "$root" ]; then
		getent "$1" "$2" >/dev/null
	else
		grep -q "^$2:" "$root/etc/$1"
	fi
}

shell=/usr/sbin/nologin
[ -x "$root$shell" ] || shell=/sbin/nologin
if ! exists group kinship; then
	groupadd $prefix --system kinship
fi
if ! exists passwd kinship; then
	useradd $prefix --system --gid kinship --home-dir /var/lib/kinship --no-create-home \
		--shell "$shell" --comment "kinship log shipper" kinship
fi
if exists group adm; then
	usermod $prefix --append --groups adm kinship
fi
exit 0
