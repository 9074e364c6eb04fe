#!/usr/bin/env bash
# Everyday conveniences, through the CLI: status shows addresses and the
# declared state beside the shown one; watch filters by node, group and
# event and starts with a snapshot; wait takes several states and all of
# a group; force-leave marks a dead member left at once (and refuses a
# live one without --force); set --for expires and survives a restart.
source "$(dirname "$0")/lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s

pdb=$(free_port); pw1=$(free_port); pw2=$(free_port)
write_config db1 "$pdb" "[db]" "[]"
write_config web1 "$pw1" "[web]" "[tcp://127.0.0.1:$pdb]" 'checks:
  - name: flag
    run: [sh, -c, "test ! -e '"$T"'/web1.down"]
    interval: 300ms
    timeout: 250ms
    fall: 1
    rise: 1
    state: degraded'
write_config web2 "$pw2" "[web]" "[tcp://127.0.0.1:$pdb]"
start_agent db1
start_agent web1
start_agent web2
wait_for "db1 sees both webs" 10 has_members db1 3

# ---- status: addresses, declared vs shown ----
c db1 status --json | jq -e --arg a "tcp://127.0.0.1:$pw1" \
  '.node.addr == "tcp://127.0.0.1:'"$pdb"'" and
   (.peers[] | select(.name == "web1") | .addr) == $a and
   .declared.state == "ready"' >/dev/null ||
  fail "status --json lacks addr or declared: $(c db1 status --json)"
c db1 status | grep -q "^NAME .* ADDR" || fail "no ADDR column: $(c db1 status)"
c db1 status | grep "^web1 " | grep -q "tcp://127.0.0.1:$pw1" ||
  fail "web1's row lacks its address: $(c db1 status)"
touch "$T/web1.down"
wait_for "web1 degraded by its check" 10 sees web1 web1 degraded
c web1 status | grep -q "^DECLARED: ready; shown: degraded" ||
  fail "status doesn't say declared vs shown: $(c web1 status)"
c web1 status --json | jq -e '.node.state == "degraded" and .declared.state == "ready"' >/dev/null ||
  fail "status --json declared: $(c web1 status --json)"
rm -f "$T/web1.down"
wait_for "web1 ready again" 10 sees db1 web1 ready
ok "status: ADDR column and addr field; declared vs shown state"

# ---- watch: filters and snapshot ----
"$CHOREO_BIN" watch --json --snapshot --group web --event snapshot,state \
  --socket "$T/db1.sock" > "$T/w.group" 2>&1 &
wg=$!
"$CHOREO_BIN" watch --json --node web2 --socket "$T/db1.sock" > "$T/w.node" 2>&1 &
wn=$!
wait_for "the snapshot" 5 sh -c "[ \$(grep -c '\"event\":\"snapshot\"' '$T/w.group') -ge 2 ]"
jq -s -e '[.[] | select(.event == "snapshot") | .peer] | sort == ["web1","web2"]' \
  "$T/w.group" >/dev/null || fail "snapshot of group web: $(cat "$T/w.group")"
c web2 set busy || fail "set busy"
c web1 set busy || fail "set busy"
c db1 set maintenance || fail "set db1"
c web2 set ready -d k=v || fail "set web2 ready"
wait_for "web2 ready in the node watch" 5 grep -q '"peer":"web2","state":"ready"' "$T/w.node"
wait_for "web1 busy in the group watch" 5 grep -q '"peer":"web1","state":"busy"' "$T/w.group"
wait_for "web2 ready in the group watch" 5 grep -q '"event":"state","peer":"web2","state":"ready"' "$T/w.group"
kill -INT "$wg" "$wn"; wait "$wg" "$wn" 2>/dev/null
jq -s -e 'all(.[]; .groups == ["web"] and (.event == "snapshot" or .event == "state"))' \
  "$T/w.group" >/dev/null || fail "group watch let through: $(cat "$T/w.group")"
grep -q '"peer":"db1"' "$T/w.group" && fail "group watch showed db1"
jq -s -e 'all(.[]; .peer == "web2") and any(.[]; .event == "data")' "$T/w.node" >/dev/null ||
  fail "node watch: $(cat "$T/w.node")"
out=$("$CHOREO_BIN" watch --event bogus --socket "$T/db1.sock" 2>&1); rc=$?
[ "$rc" = 2 ] && echo "$out" | grep -q "'bogus' is not an event" || fail "watch --event bogus: $rc $out"
ok "watch --node, --group, --event and --snapshot"

# ---- wait: several states, all of a group ----
c web1 set ready
c web2 set ready
wait_for "both webs ready" 5 sees db1 web1 ready
wait_for "both webs ready" 5 sees db1 web2 ready
c db1 wait --group web --all --state ready,busy --timeout 2s || fail "wait --all --state ready,busy"
c db1 set ready
c web1 set busy
c db1 wait --node web1 --any --state drain,busy --timeout 2s || fail "wait --state drain,busy"
out=$(c db1 wait --group web --all ready --timeout 300ms 2>&1) && fail "wait --all ready held with web1 busy"
echo "$out" | grep -q "timed out" || fail "wait --all: $out"
( sleep 0.3; c web1 set drain ) &
setter=$!
c db1 wait --group web --all --state ready,drain --timeout 5s || fail "wait --all for ready,drain"
wait "$setter"
out=$(c db1 wait --node web1 --any --state 'ready,,x' 2>&1); rc=$?
[ "$rc" = 2 ] || fail "wait --state with an empty entry: $rc $out"
ok "wait --state a,b (any of several) and --all --group"

# ---- force-leave ----
"$CHOREO_BIN" force-leave --help | grep -q "^Usage: choreo force-leave NODE" ||
  fail "force-leave --help"
"$CHOREO_BIN" --help | grep -q "force-leave" || fail "choreo --help lacks force-leave"
out=$("$CHOREO_BIN" force-leave 2>&1); rc=$?
[ "$rc" = 2 ] || fail "force-leave without NODE: $rc $out"
out=$(c db1 force-leave web2 2>&1); rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "web2 is alive" || fail "force-leave of a live node: $rc $out"
out=$(c db1 force-leave nobody 2>&1); rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "nobody is not a member" || fail "force-leave nobody: $rc $out"
"$CHOREO_BIN" watch --json --event left --socket "$T/db1.sock" > "$T/w.left" 2>&1 &
wl=$!
kill_agent web2
wait_for "db1 sees web2 lost" 10 sees db1 web2 lost
c db1 force-leave web2 || fail "force-leave web2"
sees db1 web2 left || fail "web2 not left after force-leave: $(c db1 status --json)"
wait_for "the left event" 5 grep -q '"event":"left","peer":"web2"' "$T/w.left"
kill -INT "$wl"; wait "$wl" 2>/dev/null
sees web1 web2 lost || fail "force-leave on db1 changed web1's view: $(state_seen web1 web2)"
out=$(c db1 force-leave web2 2>&1); rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "left already" || fail "force-leave twice: $rc $out"
c web1 force-leave --force db1 || fail "force-leave --force of a live node"
sees web1 db1 left || fail "db1 not left on web1 after --force"
c db1 set tick
wait_for "db1 joins web1's view again with a new state" 5 sees web1 db1 tick
ok "force-leave: refused for live or unknown nodes, marks a lost node left here only; --force; a newer record revives"

# ---- set --for: expires, renews, survives a restart ----
c web1 set ready --reason back || fail "set web1 ready"
c web1 set drain --reason upgrade --for 1500ms || fail "set --for"
c web1 status --json | jq -e '.declared.state == "drain" and .declared.then == "ready" and .declared.until > 0' >/dev/null ||
  fail "status lacks the expiry: $(c web1 status --json)"
jq -e '.until > 0 and .then == "ready" and .then_reason == "back"' "$T/web1.state/state.json" >/dev/null ||
  fail "state.json lacks the expiry: $(cat "$T/web1.state/state.json")"
c web1 set maint --for 1500ms || fail "renew with another state"
wait_for "web1 returns to ready after --for" 6 sees db1 web1 ready
c web1 status --json | jq -e '.declared.reason == "back" and (.declared | has("until") | not)' >/dev/null ||
  fail "not back to the state before the first --for: $(c web1 status --json)"
c web1 set drain --for 60s || fail "set --for 60s"
c web1 set drain || fail "set without --for"
c web1 status --json | jq -e '.declared | has("until") | not' >/dev/null ||
  fail "a plain set kept the expiry"
out=$(c web1 set drain --for 0s 2>&1); rc=$?
[ "$rc" = 2 ] || fail "--for 0s accepted: $rc $out"
ok "set --for: returns to the earlier state, renewed by another --for, cancelled by a plain set"

c web1 set ready
c web1 set maintenance --for 2s || fail "set --for 2s"
kill_agent web1 TERM
start_agent web1
sees web1 web1 maintenance || fail "web1 lost its --for state over a restart"
c web1 status --json | jq -e '.declared.then == "ready"' >/dev/null || fail "restart dropped the expiry"
wait_for "web1 back to ready after the restart" 6 sees web1 web1 ready
kill_agent web1 TERM
jq -e '.state == "ready"' "$T/web1.state/state.json" >/dev/null || fail "state.json after expiry"
sed -i 's/"state": "ready"/"state": "maintenance"/' "$T/web1.state/state.json"
jq '. + {until: 1000, then: "ready", then_reason: ""}' "$T/web1.state/state.json" > "$T/s.json" && mv "$T/s.json" "$T/web1.state/state.json"
chmod 600 "$T/web1.state/state.json"
start_agent web1
sees web1 web1 ready || fail "an expiry that passed while down was not applied: $(state_seen web1 web1)"
grep -q "expired while the agent was down" "$T/web1.log" || fail "no log line for the expiry while down"
ok "set --for: the expiry is kept across a restart, and applied at start when it passed"
