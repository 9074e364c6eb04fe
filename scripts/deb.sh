#!/usr/bin/env bash
# Build the Debian packages of choreo with Debian's own tools:
#   choreo_VERSION_ARCH.deb, libchoreo0_VERSION_ARCH.deb,
#   libchoreo-dev_VERSION_ARCH.deb
# The source tree (what git tracks, plus uncommitted changes) is copied
# into a temporary directory, the debian/ directory is made there from
# dist/debian/ (with the example configuration and the shell completions
# of dist/), and `dpkg-buildpackage -us -uc -b` builds it (debhelper with
# meson). lintian then checks the packages; any error or warning fails
# the build. The .deb files land in OUTDIR (default: the current
# directory).
#
#   scripts/deb.sh [OUTDIR]
#
# Needs: debhelper dpkg-dev fakeroot lintian and the build dependencies
# (scripts/deps.sh installs them all). DEB_BUILD_OPTIONS=nocheck skips
# the unit tests.
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)
VERSION=$(sed -n "s/^  version : '\([^']*\)'.*/\1/p" "$SRC/meson.build" | head -1)
[ -n "$VERSION" ] || { echo "deb: no version in meson.build" >&2; exit 1; }
for tool in dpkg-buildpackage dh lintian fakeroot; do
  command -v "$tool" >/dev/null ||
    { echo "deb: $tool is missing (scripts/deps.sh installs it)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/choreo-deb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
TREE=$WORK/choreo-$VERSION
mkdir -p "$TREE"
# The tracked files as they are now in the working tree.
(cd "$SRC" && git ls-files -z --cached --others --exclude-standard |
  xargs -0 -I{} sh -c 'test -e "{}" && echo "{}"' |
  tar -cf - -T -) | tar -xf - -C "$TREE"
rm -rf "$TREE/debian"
cp -r "$SRC/dist/debian" "$TREE/debian"
mkdir -p "$TREE/debian/extra"
cp "$SRC/dist/choreo.yaml" "$TREE/debian/extra/choreo.yaml"
cp "$SRC/dist/completions/choreo.bash" "$TREE/debian/extra/choreo"
cp "$SRC/dist/completions/_choreo" "$TREE/debian/extra/_choreo"

sed -e "s/@VERSION@/$VERSION/" -e "s/@DATE@/$(date -R)/" \
  "$TREE/debian/changelog.in" > "$TREE/debian/changelog"
rm "$TREE/debian/changelog.in"

(cd "$TREE" && dpkg-buildpackage -us -uc -b) > "$WORK/build.log" 2>&1 || {
  tail -n 60 "$WORK/build.log" >&2
  echo "deb: dpkg-buildpackage failed (log above)" >&2
  exit 1
}
CHANGES=$(ls "$WORK"/choreo_"$VERSION"_*.changes)
# Errors and warnings fail (there are no overrides: an override would
# go in dist/debian/PACKAGE.lintian-overrides with its reason).
if ! lintian --fail-on error,warning "$CHANGES" > "$WORK/lintian.log" 2>&1; then
  cat "$WORK/lintian.log" >&2
  echo "deb: lintian found problems (above)" >&2
  exit 1
fi
cat "$WORK/lintian.log"
cp "$WORK"/*.deb "$OUT/"
ls "$OUT"/choreo_"$VERSION"_*.deb "$OUT"/libchoreo*_"$VERSION"_*.deb
