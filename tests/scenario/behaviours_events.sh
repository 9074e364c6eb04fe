#!/usr/bin/env bash
# Events (docs/BEHAVIOURS.md "Events") with real agents: `on: change`
# coalesces a burst into at most two runs whose last input is the final
# snapshot; `on: [joined, lost, left, state, data]` runs once per event per
# peer, with the peer in its environment; a pack included with vars gives
# them to its scripts as CHOREO_VAR_<name> and resolves its paths against
# its own directory.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/behaviours_lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s

mkdir -p "$T/pack"
cat > "$T/pack/vars.sh" <<'SH'
#!/bin/sh
env | grep '^CHOREO_VAR_' | sort > "$EVENTS_DIR/$CHOREO_NODE.vars"
echo "$CHOREO_BEHAVIOUR $CHOREO_EVENT $CHOREO_PEER" >> "$EVENTS_DIR/$CHOREO_NODE.vars"
SH
chmod +x "$T/pack/vars.sh"
cat > "$T/pack/restart-unit.yaml" <<'YAML'
behaviours:
  - name: restart-${unit}
    peers:
      group: ${depends_on}
    on: [data]
    run: [./vars.sh]
YAML

behaviours="include:
  - file: pack/restart-unit.yaml
    vars: {unit: shop-worker.service, depends_on: db}
behaviours:
  - name: burst
    peers: {group: db}
    on: change
    run: [$T/record.sh, '2']
$(behaviour events '{group: db}' 'on: [joined, lost, left, state, data]')"

declare -A P
for n in db1 db2 db3 app1 web1; do P[$n]=$(free_port); done
seed="[tcp://127.0.0.1:${P[db1]}]"
write_config db1 "${P[db1]}" "[db]" "[]"
write_config db2 "${P[db2]}" "[db]" "$seed"
write_config db3 "${P[db3]}" "[db]" "$seed"
write_config app1 "${P[app1]}" "[app]" "$seed"
# web1's startup sync waits for the first heartbeat of every member it
# learns of, or for a window of 1.5 heartbeats: 400 ms heartbeats give
# the members 600 ms to be heard on a loaded machine, so that the startup
# snapshot below holds both databases.
HEARTBEAT=400ms write_config web1 "${P[web1]}" "[web]" "$seed" "$behaviours"
"$CHOREO_BIN" check -c "$T/web1.yaml" >/dev/null || fail "web1's configuration: $("$CHOREO_BIN" check -c "$T/web1.yaml" 2>&1)"
for n in db1 db2 app1 web1; do start_agent "$n"; done
wait_for "web1 sees 4 members" 10 has_members web1 4

# on: change runs once after the startup sync, with the snapshot.
wait_for "burst runs at startup" 5 has_calls web1 burst "^change " 1
last_stdin web1 burst | jq -e '.event == "change" and ([.peers[].name] | sort) == ["db1", "db2"]' >/dev/null ||
  fail "burst's startup input: $(last_stdin web1 burst)"
settled web1 10
expect_calls web1 events 0 # events before the sync are not replayed
ok "on: change runs once at startup with the snapshot; per-peer events are not replayed"

# A burst of five changes while the first run sleeps (2 s, longer than the
# five CLI calls take even on a loaded machine): at most two runs,
# the last one sees the final states.
wait_for "the startup run is over" 5 idle web1
for s in "db1 s1" "db2 s2" "db1 s3" "db2 s4" "db1 s5"; do
  set -- $s
  c "$1" set "$2" || fail "set $s"
done
final() {
  last_stdin web1 burst | jq -e '[.peers[] | {(.name): .state}] | add == {"db1": "s5", "db2": "s4"}' >/dev/null
}
wait_for "burst's last run sees db1 s5 and db2 s4" 10 final
settled web1 20
n=$(($(calls web1 burst) - 1))
[ "$n" -ge 1 ] && [ "$n" -le 2 ] || fail "a burst of 5 changes ran burst $n times: $(cat "$T/web1.burst")"
final || fail "a later run replaced the final snapshot: $(last_stdin web1 burst)"
ok "on: change: a burst of 5 changes ran $n time(s); the last input is the final snapshot"

# One run per event per peer, in order, with the peer in the environment.
expect_calls web1 events 5 # the five state changes above
start_agent db3
wait_for "joined db3" 5 has_calls web1 events "^joined peer=db3 state=ready previous= " 1
c db3 set busy --reason testing || fail "set db3 busy"
wait_for "state db3" 5 has_calls web1 events "^state peer=db3 state=busy previous=ready reason=testing " 1
c db3 set busy --data role=replica || fail "set db3 data"
wait_for "data db3" 5 has_calls web1 events "^data peer=db3 state=busy " 1
c db3 set ready --data role=primary || fail "set db3 state and data"
wait_for "state and data db3" 5 has_calls web1 events "^data peer=db3 state=ready " 1
c app1 set busy --data x=y || fail "set app1" # not watched: no event
kill_agent db3 KILL
wait_for "lost db3" 5 has_calls web1 events "^lost peer=db3 state=lost previous=ready " 1
start_agent db3
wait_for "joined db3 again" 5 has_calls web1 events "^joined peer=db3 state=ready previous=lost " 1
c db3 leave || fail "db3 leave"
wait_for "left db3" 5 has_calls web1 events "^left peer=db3 state=left previous=ready " 1
settled web1 10
expected="joined state data state data lost joined left"
got=$(grep -v "^state peer=db[12] " "$T/web1.events" | awk '{print $1}' | xargs)
[ "$got" = "$expected" ] || fail "events for db3: got '$got', expected '$expected': $(cat "$T/web1.events")"
has_calls web1 events "peer=app1" 0 || fail "app1 is not in group db: $(cat "$T/web1.events")"
ok "on: [joined, lost, left, state, data]: one run per event per peer, in order: $got"

# The pack's behaviour, named and selected through its vars, ran for
# every data change of a db peer, with the vars in its environment.
has_lines "$T/web1.vars" "^restart-shop-worker.service data db3$" 1 ||
  fail "the pack's behaviour: $(cat "$T/web1.vars" 2>/dev/null)"
grep -qx "CHOREO_VAR_depends_on=db" "$T/web1.vars" && grep -qx "CHOREO_VAR_unit=shop-worker.service" "$T/web1.vars" ||
  fail "the pack's vars: $(cat "$T/web1.vars")"
ok "a pack included with vars: \${NAME} replaced, CHOREO_VAR_<name> in its scripts' environment, paths relative to the pack"
