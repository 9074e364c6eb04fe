#!/usr/bin/env bash
# Shares (docs/PROTOCOL.md "Shares") with real agents: four relays, eight
# leaves that list all four and a plain mesh member. With more than two
# relays alive each relay forwards the leaves' messages to its share
# only: the leaves for which it ranks among the two highest relays
# (rendezvous hashing over the relays alive), plus every relay and mesh
# member. Checked: the shares cover every leaf exactly twice, each as the
# hash says; the story reaches every webserver exactly once; a relay
# killed moves the shares at once to the three left and a change still
# reaches everyone; the relay restarted takes its share back and a
# change still reaches everyone. (A leaf lists every relay:
# docs/CONFIGURATION.md "relays"; each relay hears every leaf.)
source "$(dirname "$0")/lib.sh"

install_recorder
behaviour='behaviours:
  - name: holding-page
    peers: {group: db}
    when: {any: maintenance}
    run: ['"$T"'/record.sh, "on"]
    revert: ['"$T"'/record.sh, "off"]'

relays="r1 r2 r3 r4"
webs="web1 web2 web3 web4 web5 web6 web7"
leaves="db1 $webs"
declare -A PORT=()
for n in $relays $leaves m1; do PORT[$n]=$(free_port); done
relay_addrs="[tcp://127.0.0.1:${PORT[r1]}, tcp://127.0.0.1:${PORT[r2]}, tcp://127.0.0.1:${PORT[r3]}, tcp://127.0.0.1:${PORT[r4]}]"
NET_EXTRA="  relay: true" write_config r1 "${PORT[r1]}" "[relay]" "[]"
for r in r2 r3 r4; do
  NET_EXTRA="  relay: true" write_config "$r" "${PORT[$r]}" "[relay]" "[tcp://127.0.0.1:${PORT[r1]}]"
done
NET_EXTRA="  relays: $relay_addrs" write_config db1 "${PORT[db1]}" "[db]" "[]"
for w in $webs; do
  NET_EXTRA="  relays: $relay_addrs" write_config "$w" "${PORT[$w]}" "[web]" "[]" "$behaviour"
done
write_config m1 "${PORT[m1]}" "[web]" "[tcp://127.0.0.1:${PORT[r1]}]" "$behaviour"
all="$relays $leaves m1"
reacting="$webs m1"

# ---- helpers
# all_see PEER STATE VIEWER...: wait until every VIEWER shows PEER in STATE.
all_see() {
  local peer=$1 state=$2 v
  shift 2
  for v in "$@"; do
    [ "$v" = "$peer" ] || wait_for "$v sees $peer $state" 15 sees "$v" "$peer" "$state"
  done
}
# reacted EVENT ARG N NODE...: wait until every NODE ran holding-page's
# EVENT (run/revert) for db1 with ARG exactly N times.
reacted() {
  local ev=$1 arg=$2 n=$3 w
  shift 3
  for w in "$@"; do
    wait_for "$w: $ev #$n of holding-page" 15 has_calls "$w" holding-page "^$ev peer=db1 .* args=\[$arg\]$" "$n"
  done
}
# exactly RUNS REVERTS NODE...: every NODE ran holding-page RUNS times
# and reverted REVERTS times, nothing else.
exactly() {
  local runs=$1 reverts=$2 w
  shift 2
  for w in "$@"; do
    has_calls "$w" holding-page "^run peer=db1 .* args=\[on\]$" "$runs" &&
      has_calls "$w" holding-page "^revert peer=db1 .* args=\[off\]$" "$reverts" &&
      [ "$(calls "$w" holding-page)" = "$((runs + reverts))" ] ||
      fail "$w: expected $runs runs and $reverts reverts, got: $(cat "$T/$w.holding-page" 2>/dev/null)"
  done
}

# keeps_seeing PEER STATE MS VIEWER...: for MS milliseconds every VIEWER
# shows PEER in STATE, checked over and over (a measurement over a time,
# not a wait for an event).
LOST_MS=1000 # lib.sh's lost_after (1s)
now_ms() { echo $(($(date +%s%N) / 1000000)); }
keeps_seeing() {
  local peer=$1 state=$2 end=$(($(now_ms) + $3)) v s
  shift 3
  while [ "$(now_ms)" -lt "$end" ]; do
    for v in "$@"; do
      s=$(state_seen "$v" "$peer")
      [ "$s" = "$state" ] || fail "$v sees $peer '$s', not '$state'"
    done
  done
}

share_up() { metric "$1" choreo_relay_share_connections; }

# The members a relay's share holds besides the leaves it serves:
# relays and mesh members are in every share (policy_relay_serves: not a
# leaf). A relay's share holds every other relay it knows that has not
# left, alive or lost (relay_share_peer keeps a member whose status is
# not "left"), and m1. With four relays known that is 3 + 1 = 4, before
# and after one of them is killed (a lost relay keeps its place;
# choreo_relay_share_connections then counts one fewer).
NONLEAF=4

# shares_are ALIVE LEAVES: every relay of ALIVE shows a share of exactly
# NONLEAF + the leaves the hash gives it, fewer than it would forward to
# without the split; the leaves served sum to twice the leaves.
SHARES_WHY=""
shares_are() {
  local alive=$1 lv=$2 r s want sum=0 nlv
  nlv=$(wc -w <<<"$lv")
  for r in $alive; do
    s=$(share "$r")
    want=$(($(expected_served "$r" "$alive" "$lv") + NONLEAF))
    [ "$s" = "$want" ] || { SHARES_WHY="$r's share is '$s', expected $want"; return 1; }
    [ "$s" -lt $((nlv + NONLEAF)) ] || { SHARES_WHY="$r's share ($s) is everyone"; return 1; }
    sum=$((sum + s - NONLEAF))
  done
  [ "$sum" = $((2 * nlv)) ] || { SHARES_WHY="the shares serve $sum leaves, not $((2 * nlv))"; return 1; }
}
# wait_shares ALIVE LEAVES [SECONDS]: wait (default 10 s) for
# shares_are, failing with the last mismatch and every relay's gauges.
wait_shares() {
  local deadline=$(($(date +%s%N) + ${3:-10} * 1000000000)) r g=""
  until shares_are "$1" "$2"; do
    if [ "$(date +%s%N)" -ge "$deadline" ]; then
      for r in $1; do g="$g $r=$(share "$r")/$(share_up "$r")"; done
      fail "shares over [$1]: $SHARES_WHY (members/connections:$g)"
    fi
    sleep 0.02
  done
}
shares_line() {
  local r out=""
  for r in $1; do out="$out $r:$(share "$r")"; done
  echo "$out"
}

# shares_settle RELAY...: each forwards to its share, the shares are as
# the hash says over these relays, and every share connection is up.
shares_settle() {
  local r
  for r in "$@"; do wait_for "$r forwards to its share" 10 split_on "$r"; done
  wait_shares "$*" "$leaves"
  for r in "$@"; do
    wait_for "$r's share connections up" 10 eval '[ "$(share_up '"$r"')" = "$(share '"$r"')" ]'
  done
}

# ---- 1. membership
for n in $all; do start_agent "$n"; done
all_have 13 $all
ok "four relays, eight leaves and a mesh member: everyone sees thirteen members"

# ---- 2. the relays split the leaves
shares_settle $relays
ok "the four relays split the leaves: shares$(shares_line "$relays") = 4 + the leaves the hash gives each, 16 in all (each leaf twice)"

# ---- 3. the story through the shares
c db1 set maintenance --reason "schema upgrade" || fail "set maintenance"
reacted run on 1 $reacting
c db1 set ready || fail "set ready"
reacted revert off 1 $reacting
settled web1 10
exactly 1 1 $reacting
all_see db1 ready $all
ok "the story through shares: every webserver and the mesh member ran the holding page once and reverted once"

# ---- 4. a relay killed: the shares move at once to the three left
kill_agent r2
left3="r1 r3 r4"
all_see r2 lost $left3 $leaves m1
# At once: a relay syncs its share when it takes a relay lost, not a
# heartbeat later; 2 s is ten heartbeats, for the checks' own time.
wait_shares "$left3" "$leaves" 2
for r in $left3; do
  wait_for "$r's share connections up but r2's" 10 eval '[ "$(share_up '"$r"')" = "$(($(share '"$r"') - 1))" ]'
done
ok "r2 killed: the shares moved to the three relays left:$(shares_line "$left3") (each leaf twice)"
c db1 set maintenance --reason "r2 is down" || fail "set maintenance with r2 down"
reacted run on 2 $reacting
c db1 set ready || fail "set ready with r2 down"
reacted revert off 2 $reacting
settled web1 10
exactly 2 2 $reacting
ok "with r2 down a change still reaches every webserver once"

# ---- 5. r2 restarted: the shares are four relays' again
start_agent r2
all_have 13 r2
all_see r2 ready $left3 $leaves m1
all_see db1 ready r2
shares_settle $relays
ok "r2 restarted: the shares are four relays' again:$(shares_line "$relays") (each leaf twice)"
c db1 set maintenance --reason "r2 is back" || fail "set maintenance with r2 back"
reacted run on 3 $reacting
c db1 set ready || fail "set ready with r2 back"
reacted revert off 3 $reacting
all_see db1 ready $relays $leaves m1
settled web1 10
exactly 3 3 $reacting
for n in $relays $leaves m1; do
  v=$(metric "$n" 'choreo_messages_dropped_total{reason="replay"}')
  [ "$v" = 0 ] || fail "$n counted $v replays"
done
ok "with r2 back a change still reaches every webserver once; no replays anywhere"
