#!/bin/sh
# Builds dist/kinship_VERSION-1_ARCH.deb and dist/kinship-VERSION-1.ARCH.rpm for each arch in
# $ARCHES (Go names; default amd64 arm64) from packaging/nfpm.yaml. Reproducible: the same
# commit gives the same bytes (-trimpath, no build id, every time from the last commit).
# VERSION may be set to build a given version (packaging/check.sh builds an upgrade).
set -eu
cd "$(dirname "$0")/.."
: "${ARCHES:=amd64 arm64}"
: "${VERSION:=$(packaging/version.sh)}"
: "${DIST:=dist}"
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)

export SOURCE_DATE_EPOCH VERSION

# Fixed path: nfpm.yaml names the changelog there (nfpm expands no variables in that field).
work=dist/.build
rm -rf "$work"
mkdir -p "$work" "$DIST"
trap 'rm -rf "$work"' EXIT

# gzip -n: no name or time stamp in the header, so the bytes depend on the content only.
gzip -9n <packaging/kinship.1 >"$work/kinship.1.gz"
cat >"$work/changelog.yml" <<CHANGELOG
- semver: $VERSION
  date: $(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
  packager: kinship maintainers <maintainers@kinship.invalid>
  deb: {urgency: medium, distributions: [unstable]}
  changes:
    - commit: $(git rev-parse HEAD)
      note: Built from git commit $(git rev-parse --short=12 HEAD).
CHANGELOG

for ARCH in $ARCHES; do
	BUILD="$work/$ARCH"
	mkdir -p "$BUILD"
	cp "$work/kinship.1.gz" "$BUILD/"
	# -s -w: Debian wants installed binaries stripped. PIE: address space randomisation,
	# which lintian and rpmlint expect; Go links it internally, so no C toolchain is needed.
	CGO_ENABLED=0 GOOS=linux GOARCH=$ARCH go build -trimpath -buildvcs=false -buildmode=pie \
		-ldflags "-s -w -buildid= -X main.version=$VERSION" -o "$BUILD/kinship" ./cmd/agent
	touch -d "@$SOURCE_DATE_EPOCH" "$BUILD"/*
	export ARCH BUILD
	for fmt in deb rpm; do
		go tool nfpm package --config packaging/nfpm.yaml --packager "$fmt" --target "$DIST/"
	done
done
