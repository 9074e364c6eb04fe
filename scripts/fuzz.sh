#!/usr/bin/env bash
# Build the libFuzzer targets of tests/fuzz with clang and run each one for
# SECONDS (default 60), printing one line per target:
#   ok - fuzz_wire: N runs in Ss, no crash
#   FAIL: fuzz_wire: ... (with the reproducer's path and the log's tail)
# Usage: scripts/fuzz.sh [SECONDS]
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_TARGETS (default
# "wire sealed batch config control"), FUZZ_ARGS (more libFuzzer options, e.g.
# "-jobs=4 -workers=4"). The corpus grown by each run is kept in
# $FUZZ_BUILD_DIR/fuzz-work/TARGET/corpus, so later runs start from it; the
# seeds in tests/fuzz/corpus are never written to. See docs/FUZZING.md.
set -u
cd "$(dirname "$0")/.." || exit 1
secs=${1:-60}
dir=${FUZZ_BUILD_DIR:-build-fuzz}
targets=${FUZZ_TARGETS:-wire sealed batch config control statefiles identity trust}

case $secs in
'' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac
if [ ! -f "$dir/build.ninja" ]; then
  mkdir -p "$dir"
  CC=clang meson setup "$dir" -Dfuzz=true -Dbuildtype=debugoptimized \
    >"$dir/setup.log" 2>&1 || { echo "FAIL: fuzz: meson setup (see $dir/setup.log)"; exit 1; }
fi
build=()
for t in $targets; do build+=("tests/fuzz/fuzz_$t"); done
ninja -C "$dir" "${build[@]}" >/dev/null || {
  ninja -C "$dir" "${build[@]}"
  echo "FAIL: fuzz: build"
  exit 1
}

# Leaks are bugs; a hang of 10 s is one too. abort_on_error makes ASan's
# reports end in a crash that libFuzzer saves as a reproducer. A 16 MiB
# quarantine and 8-frame allocation stacks double the rate of the targets
# that allocate much (fuzz_control) and still catch use after free; run a
# reproducer with ASAN_OPTIONS unset for ASan's full report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:quarantine_size_mb=16:malloc_context_size=8}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

dict_for() {
  case $1 in
  config) echo tests/fuzz/yaml.dict ;;
  identity) echo tests/fuzz/identity.dict ;;
  *) echo tests/fuzz/wire.dict ;;
  esac
}

# Each target runs in its own work directory, where libFuzzer also writes
# the logs of its workers (fuzz-N.log) when FUZZ_ARGS asks for -jobs.
root=$(pwd)
dir=$(cd "$dir" && pwd)
status=0
for t in $targets; do
  work="$dir/fuzz-work/$t"
  log="$work/run.log"
  mkdir -p "$work/corpus" "$work/artifacts"
  rm -f "$work"/fuzz-*.log
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of options
  (cd "$work" && exec "$dir/tests/fuzz/fuzz_$t" -max_total_time="$secs" \
    -print_final_stats=1 -timeout=10 -dict="$root/$(dict_for "$t")" \
    -artifact_prefix="$work/artifacts/" ${FUZZ_ARGS:-} \
    "$work/corpus" "$root/tests/fuzz/corpus/$t") >"$log" 2>&1
  rc=$?
  # With -jobs, the workers' logs hold the counts and run.log repeats them.
  logs=("$log")
  if compgen -G "$work/fuzz-*.log" >/dev/null; then logs=("$work"/fuzz-*.log); fi
  runs=$(cat "${logs[@]}" 2>/dev/null |
    awk '/stat::number_of_executed_units:/ { n += $2 } END { print n + 0 }')
  if [ "$rc" -eq 0 ]; then
    echo "ok - fuzz_$t: $runs runs in ${secs}s, no crash"
  else
    repro=$(find "$work/artifacts" -type f -printf '%T@ %f\n' | sort -n | tail -n 1 | cut -d' ' -f2)
    echo "FAIL: fuzz_$t: exit $rc after $runs runs; reproducer: $work/artifacts/${repro:-none}; log: $log"
    tail -n 40 "$log" | sed 's/^/# /'
    status=1
  fi
done
exit $status
