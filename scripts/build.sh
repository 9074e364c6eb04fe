#!/usr/bin/env bash
# Build choreo into BUILD_DIR (default: build) with meson and ninja.
# Extra arguments go to `meson setup` (e.g. -Db_sanitize=address,undefined).
set -eu
cd "$(dirname "$0")/.."
dir=${BUILD_DIR:-build}
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" "$@" >/dev/null
fi
ninja -C "$dir" >/dev/null
