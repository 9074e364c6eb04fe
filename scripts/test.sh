#!/usr/bin/env bash
# Install the dependencies, build choreo and its tests with AddressSanitizer
# and UndefinedBehaviorSanitizer, and run the whole suite: unit tests
# (cmocka), scenario tests (real agents on loopback driven by the CLI) and
# short fuzzing runs. Ends with the line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
scripts/deps.sh || exit 1
dir=${BUILD_DIR:-build-test}
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" -Db_sanitize=address,undefined -Db_lundef=false \
    -Dwerror=true -Dbuildtype=debug >/dev/null || exit 1
fi
ninja -C "$dir" >/dev/null || { ninja -C "$dir"; echo "0 passed, 1 failed"; exit 1; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
meson test -C "$dir" --print-errorlogs --num-processes 2 "$@"
status=$?

# Short fuzzing runs (docs/FUZZING.md): FUZZ_SECONDS per target, built
# with clang beside the test build; 0 skips them, and so does running only
# some tests (arguments for meson test).
fuzz_log="$dir/fuzz.log"
fuzz_secs=${FUZZ_SECONDS:-10}
if [ $# -eq 0 ] && [ "$fuzz_secs" != 0 ]; then
  FUZZ_BUILD_DIR="$dir-fuzz" scripts/fuzz.sh "$fuzz_secs" | tee "$fuzz_log"
else
  echo "SKIP: fuzzing (FUZZ_SECONDS=$fuzz_secs, $# test arguments)" | tee "$fuzz_log"
fi

# Count test cases (cmocka cases, scenario checks, fuzz runs).
/usr/bin/python3 scripts/count-tests.py "$dir/meson-logs/testlog.json" "$fuzz_log"
counted=$?
[ "$status" -eq 0 ] && [ "$counted" -eq 0 ]
