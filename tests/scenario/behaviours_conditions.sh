#!/usr/bin/env bash
# Conditions (docs/BEHAVIOURS.md "Conditions"), with real agents driven
# through the CLI: a quorum rule ({fewer_than: 2, state: ready} over three
# databases), {all: S}, {none: S}, a list of states, group and node
# selectors, and settle (a flap shorter than settle runs nothing).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/behaviours_lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s

behaviours="behaviours:
$(behaviour quorum '{group: db}' 'when: {fewer_than: 2, state: ready}')
$(behaviour all-maint '{group: db}' 'when: {all: maintenance}')
$(behaviour none-busy '{group: db}' 'when: {none: [maintenance, draining]}')
$(behaviour any-busy '{group: db}' 'when: {any: [maintenance, draining]}')
$(behaviour db3-maint '{node: db3}' 'when: {any: maintenance}')
$(behaviour app-maint '{group: app}' 'when: {any: maintenance}')
$(behaviour app-drain '{group: app}' 'when: {any: draining}' '    settle: 500ms')"

declare -A P
for n in db1 db2 db3 app1 web1; do P[$n]=$(free_port); done
seed="[tcp://127.0.0.1:${P[db1]}]"
write_config db1 "${P[db1]}" "[db]" "[]"
write_config db2 "${P[db2]}" "[db]" "$seed"
write_config db3 "${P[db3]}" "[db]" "$seed"
write_config app1 "${P[app1]}" "[app]" "$seed"
write_config web1 "${P[web1]}" "[web]" "$seed" "$behaviours"
for n in db1 db2 db3 app1 web1; do start_agent "$n"; done
wait_for "web1 sees 5 members" 10 has_members web1 5

# At startup only none-busy holds: it runs once, for no peer in particular.
wait_for "none-busy runs at startup" 5 has_calls web1 none-busy "^run " 1
grep -q "^run peer= state= previous= reason= matching=\[\] " "$T/web1.none-busy" ||
  fail "none-busy at startup: $(cat "$T/web1.none-busy")"
settled web1 20
for b in quorum all-maint any-busy db3-maint app-maint app-drain; do
  expect_calls web1 "$b" 0
done
ok "at startup only the condition that holds ({none: [maintenance, draining]}) runs"

# Quorum: one database out of ready leaves two, which is not fewer than 2.
c db1 set maintenance || fail "set db1"
wait_for "none-busy reverts" 5 has_calls web1 none-busy "^revert peer=db1 state=maintenance previous=ready " 1
wait_for "any-busy runs" 5 has_calls web1 any-busy "^run peer=db1 .*matching=\[db1\]" 1
settled web1 10
expect_calls web1 quorum 0
# The second one: fewer than two ready.
c db2 set draining || fail "set db2"
wait_for "quorum runs" 5 has_calls web1 quorum "^run peer=db2 state=draining previous=ready .*matching=\[db3\]" 1
c db2 set ready || fail "set db2 ready"
wait_for "quorum reverts" 5 has_calls web1 quorum "^revert peer=db2 state=ready previous=draining .*matching=\[db2 db3\]" 1
settled web1 10
expect_calls web1 quorum 2
expect_calls web1 any-busy 1 # a list of states: db2 draining kept it true
ok "quorum: runs when the second database leaves ready, reverts when it is back; a state list means one of"

# Selectors: app1 only concerns the app behaviours; db3 the node selector.
c app1 set maintenance || fail "set app1"
wait_for "app-maint runs" 5 has_calls web1 app-maint "^run peer=app1 " 1
expect_calls web1 db3-maint 0
c db3 set maintenance || fail "set db3"
wait_for "db3-maint runs" 5 has_calls web1 db3-maint "^run peer=db3 .*matching=\[db3\]" 1
wait_for "quorum runs again" 5 has_calls web1 quorum "^run peer=db3 .*matching=\[db2\]" 1
c db2 set maintenance || fail "set db2 maintenance"
wait_for "all-maint runs" 5 has_calls web1 all-maint "^run peer=db2 .*matching=\[db1 db2 db3\]" 1
settled web1 10
expect_calls web1 app-maint 1
expect_calls web1 db3-maint 1
expect_calls web1 none-busy 2
expect_calls web1 quorum 3
ok "group and node selectors: each behaviour reacts to its own peers only; {all: S} once every one is in S"

c db1 set ready || fail "set db1 ready"
wait_for "all-maint reverts" 5 has_calls web1 all-maint "^revert peer=db1 " 1
for n in db2 db3; do c "$n" set ready || fail "set $n ready"; done
wait_for "none-busy runs again" 5 has_calls web1 none-busy "^run " 2
wait_for "quorum reverts again" 5 has_calls web1 quorum "^revert " 2
wait_for "db3-maint reverts" 5 has_calls web1 db3-maint "^revert peer=db3 " 1
wait_for "any-busy reverts" 5 has_calls web1 any-busy "^revert " 1
ok "back to ready: every applied condition reverts once"

# Settle: a flap shorter than 500ms runs nothing, however long we wait.
c app1 set draining && c app1 set maintenance || fail "flap app1"
settled web1 60 # about 1.5 s of heartbeats from four peers
expect_calls web1 app-drain 0
# Held: runs, no sooner than settle after the change.
t0=$(date +%s%N)
c app1 set draining || fail "set app1 draining"
wait_for "app-drain runs after settle" 5 has_calls web1 app-drain "^run peer=app1 " 1
elapsed=$((($(date +%s%N) - t0) / 1000000))
[ "$elapsed" -ge 500 ] || fail "app-drain ran ${elapsed} ms after the change, before its settle"
# app-maint has no settle: the flap reverted and ran it, this reverts it.
wait_for "app-maint reverts" 5 has_calls web1 app-maint "^revert peer=app1 " 2
ok "settle: a flap shorter than settle runs nothing; a held change runs after ${elapsed} ms (settle 500 ms)"

# A peer's groups change (here by a reload): it moves from the app
# behaviours' peers to the database ones, with no change of state.
sed -i 's/^  groups: \[app\]$/  groups: [db]/' "$T/app1.yaml"
kill -HUP "${AGENT_PID[app1]}"
wait_for "app-drain reverts" 5 has_calls web1 app-drain "^revert peer=app1 state=draining " 1
wait_for "any-busy runs for app1" 5 has_calls web1 any-busy "^run peer=app1 .*matching=\[app1\]" 1
c web1 status --json | jq -e '.peers[] | select(.name == "app1") | .groups == ["db"]' >/dev/null ||
  fail "web1 doesn't show app1's new groups"
ok "a peer whose groups change leaves one selector's peers and joins another's"
