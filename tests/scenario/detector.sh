#!/usr/bin/env bash
# The failure detector never goes to sleep (docs/RELIABILITY.md): a peer
# that crashes, comes back and crashes again is declared lost again within
# lost_after + one heartbeat, however many times it happens, whichever of
# the two nodes of the cluster it is (the seed or the one that joined).
#
# Each node records the time of every lost event it raises (an `on: [lost]`
# behaviour), so the delay measured is the agent's, not the CLI polling's.
source "$(dirname "$0")/lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s
HB_MS=200 LOST_MS=1000
# Scheduling slack on a loaded machine (the agent's timer, the script's
# start): on top of lost_after + one heartbeat.
SLACK_MS=600

cat > "$T/lost.sh" <<'SH'
#!/bin/sh
echo "$(date +%s%N) $CHOREO_EVENT $CHOREO_PEER" >> "$EVENTS_DIR/$CHOREO_NODE.lost"
SH
chmod +x "$T/lost.sh"
export EVENTS_DIR=$T
behaviour="behaviours:
  - name: record-lost
    on: [lost]
    run: [$T/lost.sh]"

pdb=$(free_port); pw=$(free_port)
write_config db1 "$pdb" "[db]" "[]" "$behaviour"
write_config web1 "$pw" "[web]" "[tcp://127.0.0.1:$pdb]" "$behaviour"
"$CHOREO_BIN" check -c "$T/db1.yaml" >/dev/null || fail "db1's configuration: $("$CHOREO_BIN" check -c "$T/db1.yaml" 2>&1)"

losses() { count_lines "$T/$1.lost" " lost $2\$"; }
has_losses() { [ "$(losses "$1" "$2")" -ge "$3" ]; }

# crash VIEWER VICTIM: kill -9 VICTIM and check that VIEWER raises its
# next lost event for it within lost_after + one heartbeat (+ slack).
crash() {
  local viewer=$1 victim=$2 before t0 t1 ms
  before=$(losses "$viewer" "$victim")
  t0=$(date +%s%N)
  kill_agent "$victim" KILL
  wait_for "$viewer sees $victim lost" 10 has_losses "$viewer" "$victim" $((before + 1))
  t1=$(grep " lost $victim\$" "$T/$viewer.lost" | tail -n 1 | cut -d' ' -f1)
  ms=$(((t1 - t0) / 1000000))
  [ "$ms" -le $((LOST_MS + HB_MS + SLACK_MS)) ] ||
    fail "$viewer declared $victim lost ${ms} ms after it was killed (lost_after ${LOST_MS} ms, heartbeat ${HB_MS} ms)"
  sees "$viewer" "$victim" lost || fail "$viewer shows $victim as $(state_seen "$viewer" "$victim")"
  echo "# $viewer declared $victim lost ${ms} ms after kill -9" >&2
}

start_agent db1
start_agent web1
wait_for "db1 sees web1" 10 sees db1 web1 ready
wait_for "web1 sees db1" 10 sees web1 db1 ready

crash db1 web1
ok "kill -9: db1 declares web1 lost within lost_after + one heartbeat"

start_agent web1
wait_for "db1 sees web1 back" 10 sees db1 web1 ready
crash db1 web1
ok "kill -9, restart, kill -9: db1 declares web1 lost again within lost_after + one heartbeat"

start_agent web1
wait_for "db1 sees web1 back" 10 sees db1 web1 ready
crash db1 web1
ok "a third crash of web1 is detected as fast as the first"

# The other way round: the seed crashes, comes back, crashes again, as
# seen by the node that joined through it.
start_agent web1
wait_for "web1 sees db1" 10 sees web1 db1 ready
crash web1 db1
start_agent db1
wait_for "web1 sees db1 back" 10 sees web1 db1 ready
crash web1 db1
ok "web1 declares the seed db1 lost again after its second crash"
