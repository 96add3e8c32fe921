#!/bin/sh
# kinship: before the files are removed.
#   deb prerm: remove | upgrade NEW | deconfigure | failed-upgrade
#   rpm %preun: $1 = versions left afterwards (0 erase, 1+ upgrade)
# Stops the service on removal only; an upgrade restarts it in postinst instead. On rpm the
# unit is also disabled here (rpm has no purge); on deb the enablement stays until purge, so
# that removing and reinstalling keeps the operator's choice.
set -e
root="${DPKG_ROOT:-}"
unit=kinship.service

running=
[ -n "$root" ] || [ ! -d /run/systemd/system ] || running=1

case "$1" in
remove)
	[ -z "$running" ] || systemctl stop "$unit" || true
	;;
0)
	if command -v systemctl >/dev/null 2>&1; then
		systemctl --no-reload disable "$unit" || true
	fi
	[ -z "$running" ] || systemctl stop "$unit" || true
	;;
esac
exit 0
