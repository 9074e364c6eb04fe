#!/usr/bin/env bash
# The promise under identity: scenarios about restarts, partitions,
# relays (quiet relays: signed verdicts), membership, stalls, skew, refutation and name conflicts run
# again with identity required on every agent (lib.sh gives each node a
# key and a certificate when CHOREO_TEST_IDENTITY is set). Each must hold
# exactly as without identity.
set -u
dir=$(dirname "$0")
export CHOREO_TEST_IDENTITY=1
status=0
for t in story restart restart_truth partition relay relay_quiet membership detector \
  stall skew refute name_conflict reload; do
  echo "# ---- $t.sh with identity"
  if ! bash "$dir/$t.sh"; then
    echo "# $t.sh failed with identity required"
    status=1
  fi
done
exit "$status"
