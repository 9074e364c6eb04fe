#!/usr/bin/env bash
# The failure detector never goes to sleep (docs/RELIABILITY.md): a peer
# that crashes, comes back and crashes again is declared lost again within
# lost_after + one heartbeat, however many times it happens, whichever of
# the two nodes of the cluster it is (the seed or the one that joined).
#
# Each node records the time of every lost event it raises (an `on: [lost]`
# behaviour), so the delay measured is the agent's, not the CLI polling's.
#
# SINCE on the way: a lost or left peer shows since when it is so, and a
# node whose behaviour-claimed state ended shows since when it is back in
# its declared state, not the older since of that declared state.
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
# web1 shows degraded while no database is ready.
write_config web1 "$pw" "[web]" "[tcp://127.0.0.1:$pdb]" "$behaviour
  - name: degrade
    peers: {group: db}
    when: {fewer_than: 1, state: ready}
    run: [/bin/true]
    revert: [/bin/true]
    state: degraded"
"$CHOREO_BIN" check -c "$T/web1.yaml" >/dev/null || fail "web1's configuration: $("$CHOREO_BIN" check -c "$T/web1.yaml" 2>&1)"
"$CHOREO_BIN" check -c "$T/db1.yaml" >/dev/null || fail "db1's configuration: $("$CHOREO_BIN" check -c "$T/db1.yaml" 2>&1)"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# since_of VIEWER NODE: the since VIEWER shows for NODE (itself included).
since_of() {
  c "$1" status --json | jq -r --arg p "$2" '([.node] + .peers)[] | select(.name == $p) | .since'
}

# since_after VIEWER NODE MS: fail unless VIEWER shows NODE since MS or later.
since_after() {
  local since
  since=$(since_of "$1" "$2")
  [ -n "$since" ] && [ "$since" -ge "$3" ] ||
    fail "$1 shows $2 $(state_seen "$1" "$2") since $since, before $3 when it became so"
}

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

t_kill=$(now_ms)
crash db1 web1
ok "kill -9: db1 declares web1 lost within lost_after + one heartbeat"
since_after db1 web1 "$t_kill"
ok "SINCE of a lost peer is when it was declared lost"

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
wait_for "web1 shows degraded while db1 is lost" 10 sees web1 web1 degraded
t_back=$(now_ms)
start_agent db1
wait_for "web1 sees db1 back" 10 sees web1 db1 ready
wait_for "web1 is ready again" 10 sees web1 web1 ready
since_after web1 web1 "$t_back"
ok "SINCE of the declared state shown again after a behaviour's claim is when it was shown again"
crash web1 db1
ok "web1 declares the seed db1 lost again after its second crash"

start_agent db1
wait_for "db1 sees web1" 10 sees db1 web1 ready
t_leave=$(now_ms)
c web1 leave >/dev/null || fail "web1 leave"
wait_for "db1 sees web1 left" 10 sees db1 web1 left
since_after db1 web1 "$t_leave"
ok "SINCE of a peer that left is when it left"
