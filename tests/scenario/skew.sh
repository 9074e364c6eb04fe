#!/usr/bin/env bash
# Clock skew is neither silent nor fatal (docs/RELIABILITY.md "Clocks"):
# with a key ring, nodes whose clocks are 90 s ahead, 90 s behind and an
# hour ahead (libfaketime; the monotonic clock left alone) hear and are
# heard, and their level behaviour follows db1 both ways. Each large
# offset is warned about once per peer, shown by `choreo peers` (CLOCK,
# clock_offset_ms) and counted.
source "$(dirname "$0")/lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s
FAKETIME_LIB=${FAKETIME_LIB:-/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1}
[ -r "$FAKETIME_LIB" ] || fail "libfaketime is not installed (package faketime, scripts/deps.sh)"

# start_skewed NAME OFFSET: start_agent with the wall clock moved by
# OFFSET (libfaketime syntax: +90s, -90, +1h).
start_skewed() {
  local name=$1 offset=$2
  FAKETIME="$offset" FAKETIME_DONT_FAKE_MONOTONIC=1 LD_PRELOAD="$FAKETIME_LIB" \
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
    "$CHOREO_BIN" agent -c "$T/$name.yaml" >>"$T/$name.log" 2>&1 &
  AGENT_PID[$name]=$!
  wait_for "$name answers on its socket" 10 c "$name" status --json
}

cat > "$T/record.sh" <<'SH'
#!/bin/sh
echo "$CHOREO_EVENT $CHOREO_PEER $CHOREO_PEER_STATE" >> "$EVENTS_DIR/$CHOREO_NODE.follow"
SH
chmod +x "$T/record.sh"
export EVENTS_DIR=$T
follow='behaviours:
  - name: follow
    peers: {group: db}
    when: {any: maintenance}
    run: ['"$T"'/record.sh]
    revert: ['"$T"'/record.sh]'

key=$("$CHOREO_BIN" keygen) || fail "keygen"
printf '%s\n' "$key" > "$T/cluster.key"
chmod 600 "$T/cluster.key"
keyed_config() { # keyed_config NAME PORT GROUPS JOIN [EXTRA]
  write_config "$@"
  sed -i "/^  lost_after:/a\\  key_file: $T/cluster.key" "$T/$1.yaml"
}

declare -A SKEW=([ahead90]=+90s [behind90]=-90 [ahead1h]=+1h)
declare -A OFFSET_MS=([ahead90]=90000 [behind90]=-90000 [ahead1h]=3600000)
NODES=(db1 ahead90 behind90 ahead1h)
pdb=$(free_port)
keyed_config db1 "$pdb" "[db]" "[]"
start_agent db1
for n in ahead90 behind90 ahead1h; do
  keyed_config "$n" "$(free_port)" "[web]" "[tcp://127.0.0.1:$pdb]" "$follow"
  start_skewed "$n" "${SKEW[$n]}"
done
c ahead1h status --json | jq -e ".node.since > $(($(date +%s%3N) + 3500000))" >/dev/null ||
  fail "ahead1h's clock is not an hour ahead: $(c ahead1h status --json | jq .node.since)"

for v in "${NODES[@]}"; do
  wait_for "$v sees all 4 nodes" 10 has_members "$v" 4
  for p in "${NODES[@]}"; do
    [ "$v" = "$p" ] || wait_for "$v hears $p" 10 sees "$v" "$p" ready
  done
done
ok "nodes 90 s ahead, 90 s behind and 1 h ahead hear and are heard with a key ring"

# ---- the level behaviour follows db1 on every skewed node ----
c db1 set maintenance || fail "set maintenance on db1"
for n in ahead90 behind90 ahead1h; do
  wait_for "$n runs follow" 5 has_lines "$T/$n.follow" "^run db1 maintenance" 1
done
c db1 set ready || fail "set ready on db1"
for n in ahead90 behind90 ahead1h; do
  wait_for "$n reverts follow" 5 has_lines "$T/$n.follow" "^revert db1 ready" 1
done
for n in ahead90 behind90 ahead1h; do
  c "$n" set "busy-$n" || fail "set on $n"
  for v in "${NODES[@]}"; do
    [ "$v" = "$n" ] || wait_for "$v sees $n busy" 5 sees "$v" "$n" "busy-$n"
  done
done
ok "the level behaviour follows db1 both ways on each skewed node; their changes reach everyone"

# ---- reported: once per peer, shown, counted ----
settled db1 10
for n in ahead90 behind90 ahead1h; do
  has_lines "$T/db1.log" "warning: peer $n: its clock is " 1 ||
    fail "db1 warned $(count_lines "$T/db1.log" "warning: peer $n: its clock") times about $n"
  off=$(c db1 peers --json | jq --arg n "$n" '.[] | select(.name == $n) | .clock_offset_ms')
  want=${OFFSET_MS[$n]}
  [ -n "$off" ] && [ "$off" -gt $((want - 5000)) ] && [ "$off" -lt $((want + 5000)) ] ||
    fail "db1 shows $n's clock_offset_ms as '$off', not about $want"
done
grep -q "warning: peer ahead90: its clock is +90.[0-9] s from ours" "$T/db1.log" ||
  fail "the warning does not name the offset: $(grep 'peer ahead90: its clock' "$T/db1.log")"
has_lines "$T/ahead90.log" "warning: peer db1: its clock is -90.[0-9] s" 1 || fail "ahead90 did not warn once about db1"
has_lines "$T/ahead90.log" "warning: peer behind90: its clock is -180.[0-9] s" 1 ||
  fail "ahead90 did not warn once about behind90"
[ "$(metric db1 choreo_clock_skew_warnings_total)" = 3 ] ||
  fail "db1 counted $(metric db1 choreo_clock_skew_warnings_total) skew warnings"
c db1 peers | grep -qE "^ahead1h .* \+3600s " || fail "peers shows no CLOCK for ahead1h: $(c db1 peers)"
stale=$(metric db1 'choreo_messages_dropped_total{reason="stale"}')
ok "each offset warned once per peer with its size, shown by peers (CLOCK, clock_offset_ms) and counted (stale drops: ${stale:-0})"
