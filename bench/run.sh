#!/bin/sh
# Build choreo in release mode and run every benchmark, for choreo and for
# Serf in the same run; prints one table (docs/BENCHMARKS.md explains it).
#
#   bench/run.sh                  # the full run (about 10 minutes)
#   bench/run.sh --smoke          # tiny N, under 30 s: what `meson test
#                                 # --suite bench` runs
#   bench/run.sh --only converge  # some of reaction,converge,idle,throughput
#
# Environment: BUILD (default /tmp/bench-build; never inside the source
# tree), SERF (a serf binary; default: Debian's package, fetched with
# `apt-get download serf` and extracted with `dpkg -x` into SERF_DIR,
# default /tmp/choreo-bench-serf; never installed), PYTHON (default
# /usr/bin/python3). Other arguments go to bench/suite.py (--help).
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-/tmp/bench-build}
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=python3

case "$BUILD" in
"$SRC"/*) echo "run.sh: BUILD must be outside the source tree" >&2; exit 2 ;;
esac

if [ -f "$BUILD/build.ninja" ]; then
  meson configure "$BUILD" --buildtype=release >/dev/null
else
  meson setup "$BUILD" "$SRC" --buildtype=release >/dev/null
fi
ninja -C "$BUILD" >/dev/null

# The agent raises its own descriptor limit; the harness does the same for
# itself, but a low hard limit caps both (200 agents need about 420 each).
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 1024 ]; then
  echo "run.sh: warning: hard RLIMIT_NOFILE is $hard; 200 agents need ~420 each" >&2
fi

THROUGHPUT=
for t in "$BUILD/bench/bench-throughput" "$BUILD/bench/throughput"; do
  if [ -x "$t" ]; then THROUGHPUT=$t; break; fi
done

set -- --choreo "$BUILD/choreo" --stamp "$BUILD/bench/stamp" \
  ${THROUGHPUT:+--throughput "$THROUGHPUT"} ${SERF:+--serf "$SERF"} "$@"
exec "$PYTHON" "$SRC/bench/suite.py" "$@"
