#!/usr/bin/env bash
# A rolling upgrade of a cluster with relays from 0.2.0 (docs/OPERATIONS.md
# "Upgrades"), with the 0.2.0 binary built from the repository's history
# (commit 3618a1a) next to this tree. Four relays, four leaves:
#  - mixed: relay r1 and leaves db1 and web2 on 0.2.0, the rest on this
#    version. Everyone sees the eight members; this version's relays pass
#    every leaf heartbeat on while an agent of minor 1 is alive (0.2.0
#    times leaves by their silence) and keep none back; they split the
#    leaves into shares among the three of them, which know each other as
#    relays, and keep 0.2.0's relay in every share (it says nothing of
#    being a relay: a mesh member to them). The story: db1 (0.2.0) in
#    maintenance reaches every web, both versions, and each `holding`'s
#    last action matches; a change of a leaf of this version reaches the
#    0.2.0 agents;
#  - r1, db1 and web2 are upgraded one at a time, keeping their
#    state_dirs; after each step a change of db1 reaches everyone and the
#    last actions match. Once no agent of minor 1 is left, the relays keep
#    the leaves' unchanged heartbeats back, and r1 takes its share;
#  - r1 is rolled back to 0.2.0 on its state_dir: the relays pass every
#    heartbeat on again, and the story goes on.
# The 0.2.0 build is cached under $CHOREO_BUILD, so a rerun only checks
# that it is there.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/behaviours_lib.sh"
: "${CHOREO_BUILD:?CHOREO_BUILD must point at the build tree}"

OLD_COMMIT=3618a1a
OLD=$CHOREO_BUILD/old-0.2.0
NEW_BIN=$CHOREO_BIN

(
  flock 9
  build_at "$OLD_COMMIT" "$OLD"
) 9>"$CHOREO_BUILD/.upgrade-relays-build.lock" || fail "building 0.2.0"
# The old build runs with its own libchoreo (its RUNPATH), not the one
# meson test points LD_LIBRARY_PATH at (built with sanitizers).
OLD_BIN=$T/choreo-0.2.0
printf '#!/bin/sh\nexec env -u LD_LIBRARY_PATH "%s" "$@"\n' "$OLD/build/choreo" >"$OLD_BIN"
chmod +x "$OLD_BIN"
"$OLD_BIN" version | grep -qx "choreo 0.2.0" || fail "the old build is not 0.2.0: $("$OLD_BIN" version)"
"$OLD_BIN" version | grep -qx "protocol 1.0-1.1" || fail "0.2.0 does not speak 1.0-1.1: $("$OLD_BIN" version)"
NEW_VERSION=$("$NEW_BIN" version | head -n 1 | cut -d ' ' -f 2)
ok "0.2.0 built from $OLD_COMMIT"

install_recorder
HOLDING="$(echo "behaviours:"; behaviour holding "{group: db}" "when: {any: maintenance}")"
relays="r1 r2 r3 r4"
leaves="db1 web1 web2 web3"
all="$relays $leaves"
WEBS="web1 web2 web3"
declare -A PORT=()
for n in $all; do PORT[$n]=$(free_port); done
relay_addrs="[tcp://127.0.0.1:${PORT[r1]}, tcp://127.0.0.1:${PORT[r2]}, tcp://127.0.0.1:${PORT[r3]}, tcp://127.0.0.1:${PORT[r4]}]"
# Every relay joins the other relays (docs/OPERATIONS.md "Relays").
for r in $relays; do
  join=""
  for o in $relays; do
    [ "$o" = "$r" ] || join="${join:+$join, }tcp://127.0.0.1:${PORT[$o]}"
  done
  NET_EXTRA="  relay: true" write_config "$r" "${PORT[$r]}" "[relay]" "[$join]"
done
NET_EXTRA="  relays: $relay_addrs" write_config db1 "${PORT[db1]}" "[db]" "[]"
for w in $WEBS; do
  NET_EXTRA="  relays: $relay_addrs" write_config "$w" "${PORT[$w]}" "[web]" "[]" "$HOLDING"
done

last_is() { [ "$(last_call "$1" "$2")" = "$3" ] && idle "$1"; }
# truth STATE: db1 goes to STATE (ready or maintenance); every node sees
# it, and every web's `holding` ends on the action that matches.
truth() {
  local want=run n
  [ "$1" = maintenance ] || want=revert
  c db1 set "$1" || fail "db1 set $1"
  for n in $all; do
    [ "$n" = db1 ] || wait_for "$n sees db1 $1" 10 sees "$n" db1 "$1"
  done
  for n in $WEBS; do
    wait_for "$n's holding last ran $want" 10 last_is "$n" holding "$want"
  done
}
# leaf_change NODE: NODE goes draining and back; every other node sees
# both.
leaf_change() {
  local s v
  for s in draining ready; do
    c "$1" set "$s" || fail "$1 set $s"
    for v in $all; do
      [ "$v" = "$1" ] || wait_for "$v sees $1 $s" 10 sees "$v" "$1" "$s"
    done
  done
}
# keeps_forwarding RELAY: over a few heartbeats RELAY passes leaf
# heartbeats on and keeps none back (an agent of minor 1 is alive).
keeps_forwarding() {
  local kept0 fwd0 kept1 fwd1
  kept0=$(metric "$1" choreo_relay_repeats_kept_total)
  fwd0=$(metric "$1" choreo_relay_forwarded_total)
  settled "$1" 40
  kept1=$(metric "$1" choreo_relay_repeats_kept_total)
  fwd1=$(metric "$1" choreo_relay_forwarded_total)
  [ "$kept1" = "$kept0" ] || fail "$1 kept $((kept1 - kept0)) repeats back with an agent of minor 1 alive"
  # 40 messages are about five heartbeats of eight members, in which four
  # leaves send 20; a relay that keeps them back passes almost none on
  [ "$((fwd1 - fwd0))" -ge 4 ] || fail "$1 forwarded $((fwd1 - fwd0)) messages while an agent of minor 1 is alive"
}
# keeps_back RELAY: over a few heartbeats RELAY keeps the leaves'
# unchanged heartbeats back.
keeps_back() {
  local kept0 kept1
  kept0=$(metric "$1" choreo_relay_repeats_kept_total)
  settled "$1" 40
  kept1=$(metric "$1" choreo_relay_repeats_kept_total)
  [ "$kept1" -gt "$kept0" ] || fail "$1 kept no repeats back with every agent on this version"
}

# ---- mixed: r1, db1 and web2 on 0.2.0 ----
declare -A BIN=([r1]=$OLD_BIN [r2]=$NEW_BIN [r3]=$NEW_BIN [r4]=$NEW_BIN
  [db1]=$OLD_BIN [web1]=$NEW_BIN [web2]=$OLD_BIN [web3]=$NEW_BIN)
for n in $relays $leaves; do run_as "${BIN[$n]}" "$n"; done
all_have 8 $all
wait_for "r2 shows r1 as 0.2.0" 10 shows r2 r1 version '"0.2.0"'
shows r2 r1 proto 1 || fail "r2 and r1 (0.2.0) do not speak minor 1: $(peer_field r2 r1 proto)"
shows web1 db1 proto 1 || fail "web1 and db1 (0.2.0) do not speak minor 1: $(peer_field web1 db1 proto)"
shows r2 r3 proto 2 || fail "r2 and r3 do not speak minor 2: $(peer_field r2 r3 proto)"
ok "0.2.0 and this version, relays and leaves: everyone sees eight members, each pair speaks the highest minor both know"

for r in r2 r3 r4; do wait_for "$r splits the leaves into shares" 15 split_on "$r"; done
# Three relays of this version know each other as relays; r1 says
# nothing of being one, so each of their shares holds r1 and the two
# other relays besides the leaves the hash gives it among the three.
for r in r2 r3 r4; do
  want=$(($(expected_served "$r" "r2 r3 r4" "$leaves") + 3))
  [ "$(share "$r")" = "$want" ] ||
    fail "$r's share holds $(share "$r") members, not $want (r1, two relays and its leaves among three relays)"
done
for r in r2 r3 r4; do keeps_forwarding "$r"; done
ok "with agents of minor 1 alive this version's relays pass every heartbeat on, each to its share, 0.2.0's relay in every share"

truth maintenance
truth ready
leaf_change web3
leaf_change web1
ok "the story through relays of both versions: db1 (0.2.0) reaches every web, web1 and web3 reach the 0.2.0 agents"

# ---- the rolling upgrade, one agent at a time, on its state_dir ----
upgrade() {
  local n=$1
  kill_agent "$n" TERM
  jq -e '.format == 1' "$T/$n.state/state.json" >/dev/null ||
    fail "$n's 0.2.0 state.json: $(cat "$T/$n.state/state.json")"
  run_as "$NEW_BIN" "$n"
  for v in $all; do
    [ "$v" = "$n" ] || wait_for "$v shows $n as this version" 15 shows "$v" "$n" version "\"$NEW_VERSION\""
  done
  all_have 8 $all
}
upgrade r1
wait_for "r2 speaks minor 2 with r1" 10 shows r2 r1 proto 2
truth maintenance
truth ready
ok "r1 upgraded on its state_dir; the story goes on"
upgrade db1
truth maintenance
truth ready
ok "db1 upgraded; every change of db1 reaches everyone and every last action matches"
upgrade web2
truth maintenance
leaf_change web2
truth ready
# r1 now says it is a relay: four relays share the leaves, and each
# share holds the three other relays besides its leaves.
shares_of_four() {
  local r
  for r in $relays; do
    [ "$(share "$r")" = "$(($(expected_served "$r" "$relays" "$leaves") + 3))" ] || return 1
  done
}
wait_for "four relays share the leaves" 15 shares_of_four
for r in $relays; do keeps_back "$r"; done
ok "web2 upgraded: every agent speaks minor 2, every relay keeps the unchanged heartbeats back, r1 has its share"

# ---- rollback: r1 back to 0.2.0 on its state_dir ----
kill_agent r1 TERM
run_as "$OLD_BIN" r1
wait_for "r2 shows r1 as 0.2.0 again" 15 shows r2 r1 version '"0.2.0"'
all_have 8 $all
for r in r2 r3 r4; do keeps_forwarding "$r"; done
truth maintenance
truth ready
leaf_change web2
ok "r1 rolled back to 0.2.0 on its state_dir: the relays pass every heartbeat on again and the story goes on"

for n in $all; do
  c "$n" status --json >/dev/null || fail "$n stopped answering"
done
