#!/usr/bin/env bash
# Install the dependencies, build choreo, and run the shop story on
# loopback (examples/shop/run.sh).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
BUILD_DIR=build scripts/build.sh --buildtype=release
exec examples/shop/run.sh "$PWD/build/choreo"
