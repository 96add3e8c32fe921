#!/bin/sh
# Prints the package version from git: 1.2.3 at tag v1.2.3, 1.2.3+5.gabc1234 five commits
# later, 0.0.0+N.gHASH before the first tag (N counts commits, so every later commit gets a
# higher version, as upgrades need). Valid for dpkg and rpm alike.
set -e
if d=$(git describe --tags --match 'v[0-9]*' --long 2>/dev/null); then
	n=${d%-g*}
	hash=${d##*-g}
	tag=${n%-*}
	n=${n##*-}
	if [ "$n" = 0 ]; then echo "${tag#v}"; else echo "${tag#v}+$n.g$hash"; fi
else
	echo "0.0.0+$(git rev-list --count HEAD).g$(git rev-parse --short=7 HEAD)"
fi
