#!/bin/sh
# kinship: after the files are removed.
#   deb postrm: remove | purge | upgrade NEW | disappear | abort-* ...
#   rpm %postun: $1 = versions left (0 erase, 1+ upgrade)
# Only a deb purge deletes state: the spool (lines not shipped yet) and the read positions in
# /var/lib/kinship, and the unit's enablement. The user kinship stays (files may still be
# owned by it, as Debian policy advises); rpm has no purge, so rpm -e keeps the state too.
set -e
root="${DPKG_ROOT:-}"

if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	case "$1" in
	remove | purge | 0) systemctl daemon-reload || true ;;
	esac
fi

if [ "$1" = purge ]; then
	# The unit file is gone, so `systemctl disable` cannot find it: remove the link itself.
	rm -f "$root/etc/systemd/system/multi-user.target.wants/kinship.service"
	rm -rf "$root/var/lib/kinship"
fi
exit 0
