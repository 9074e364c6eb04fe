#!/usr/bin/env bash
# The simulator in CI (suite sim): 200 simulated agents through 2 relays
# for 30 simulated seconds, with 1 % loss, on three seeds, steady and
# through a partition of a third of the nodes; then the same seed twice,
# which must print the same line byte for byte. Each check prints "ok - "
# or "FAIL: " (scripts/count-tests.py counts them).
set -u
sim=${1:?usage: sim_test.sh CHOREO_SIM}
failed=0

run() { # NAME ARGS...: the simulator must exit 0 and say the invariants held
  local name=$1 out
  shift
  if out=$("$sim" "$@" 2>&1) && grep -q 'invariants: ok' <<<"$out"; then
    echo "ok - $name: $out"
  else
    echo "FAIL: $name: $out"
    failed=1
  fi
}

for seed in 1 2 3; do
  run "200 nodes, 2 relays, 1% loss, seed $seed, steady" \
    --nodes 200 --relays 2 --seed "$seed" --loss 0.01 --seconds 30
done
run "200 nodes, 2 relays, 1% loss, partition of a third" \
  --nodes 200 --relays 2 --seed 4 --loss 0.01 --seconds 30 --scenario partition
run "50 nodes, full mesh, 1% loss, crash and restart" \
  --nodes 50 --seed 5 --loss 0.01 --seconds 30 --scenario crash-restart

a=$("$sim" --nodes 100 --relays 2 --seed 7 --loss 0.02 --dup 0.01 --seconds 20 2>&1)
b=$("$sim" --nodes 100 --relays 2 --seed 7 --loss 0.02 --dup 0.01 --seconds 20 2>&1)
if [ -n "$a" ] && [ "$a" = "$b" ]; then
  echo "ok - the same seed gives the same output"
else
  printf 'FAIL: the same seed gave two outputs:\n%s\n%s\n' "$a" "$b"
  failed=1
fi
c=$("$sim" --nodes 100 --relays 2 --seed 8 --loss 0.02 --dup 0.01 --seconds 20 2>&1)
if [ "$a" != "$c" ]; then
  echo "ok - another seed gives another run"
else
  echo "FAIL: seeds 7 and 8 gave the same output: the seed is not used"
  failed=1
fi

# A broken invariant is reported with its seed and time, and exit 1: a
# lost_after shorter than the time the cluster needs to form can't hold.
out=$("$sim" --nodes 60 --relays 2 --seed 9 --seconds 12 --heartbeat 1000 \
  --lost-after 1100 --loss 0.3 2>&1)
rc=$?
if [ "$rc" -eq 1 ] && grep -q 'invariant broken: .*seed 9, t=' <<<"$out"; then
  echo "ok - a broken invariant names the seed and the time: $out"
else
  echo "FAIL: 30% loss with lost_after 1.1 heartbeats did not break an invariant (exit $rc): $out"
  failed=1
fi
exit $failed
