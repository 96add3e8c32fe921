#!/bin/sh
# kinship: after the files are in place.
#   deb postinst: configure OLD (OLD empty on a first install) | abort-* ...
#   rpm %post:    $1 = versions installed (1 install, 2+ upgrade)
# First install: enable, and start when the configuration is valid (the shipped one has no
# flows yet: the operator adds them in /etc/kinship/conf.d/). Upgrade: restart if enabled.
# Services are started only on a booted systemd, never in a chroot or image build, and never
# when DPKG_ROOT says the package goes into another root.
set -e
root="${DPKG_ROOT:-}"
unit=kinship.service

case "$1" in
configure) if [ -z "$2" ]; then action=install; else action=upgrade; fi ;;
1) action=install ;;
[0-9]*) action=upgrade ;;
*) exit 0 ;;
esac

running=
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
	running=1
	systemctl daemon-reload || true
fi

if [ "$action" = install ]; then
	if command -v systemctl >/dev/null 2>&1; then
		if [ -n "$root" ]; then
			systemctl --root="$root" enable "$unit"
		else
			systemctl enable "$unit"
		fi
	fi
	if [ -n "$running" ]; then
		if kinship validate --config /etc/kinship/kinship.yaml >/dev/null 2>&1; then
			systemctl start "$unit" || echo "kinship: start failed; see: journalctl -u kinship" >&2
		else
			echo "kinship: enabled but not started: add a flow in /etc/kinship/conf.d/, check it with" >&2
			echo "  kinship validate --config /etc/kinship/kinship.yaml, then: systemctl start kinship" >&2
		fi
	fi
elif [ -n "$running" ] && systemctl is-enabled --quiet "$unit"; then
	# A failed restart (say, a configuration the new version refuses) must not leave the
	# package half-configured: the operator sees it in the journal and in systemctl status.
	systemctl restart "$unit" || echo "kinship: restart failed; see: journalctl -u kinship" >&2
fi
exit 0
