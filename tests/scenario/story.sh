#!/usr/bin/env bash
# The story end to end: db1 goes into maintenance, both webservers run their
# holding-page behaviour exactly once; db1 is ready again, both revert
# exactly once; nothing more. Then a webserver started while db1 is already
# in maintenance runs `run` once and never a revert.
source "$(dirname "$0")/lib.sh"

cat > "$T/holding.sh" <<'SH'
#!/bin/sh
# Records every call, with the environment and input of SPEC.md.
input=$(cat)
echo "$1 event=$CHOREO_EVENT peer=$CHOREO_PEER peer_state=$CHOREO_PEER_STATE previous=$CHOREO_PEER_PREVIOUS reason=$CHOREO_PEER_REASON matching=$CHOREO_MATCHING node=$CHOREO_NODE behaviour=$CHOREO_BEHAVIOUR" >> "$EVENTS_DIR/$CHOREO_NODE.events"
printf '%s\n' "$input" > "$EVENTS_DIR/$CHOREO_NODE.stdin.$1"
SH
chmod +x "$T/holding.sh"
export EVENTS_DIR=$T

behaviour='behaviours:
  - name: holding-page
    peers: {group: db}
    when: {any: maintenance}
    run: ['"$T"'/holding.sh, "on"]
    revert: ['"$T"'/holding.sh, "off"]'

pdb=$(free_port); pw1=$(free_port); pw2=$(free_port); pw3=$(free_port)
write_config db1 "$pdb" "[db]" "[]"
write_config web1 "$pw1" "[web]" "[tcp://127.0.0.1:$pdb]" "$behaviour"
write_config web2 "$pw2" "[web]" "[tcp://127.0.0.1:$pdb]" "$behaviour"
write_config web3 "$pw3" "[web]" "[tcp://127.0.0.1:$pw1]" "$behaviour"

start_agent db1
start_agent web1
start_agent web2
for n in db1 web1 web2; do wait_for "$n sees 3 members" 10 has_members "$n" 3; done
ok "three agents joined through one seed"

c db1 set maintenance --reason "schema upgrade" || fail "set maintenance"
for w in web1 web2; do
  wait_for "$w runs holding-page" 10 has_lines "$T/$w.events" "^on " 1
done
grep -q "^on event=run peer=db1 peer_state=maintenance previous=ready reason=schema upgrade matching=db1 node=web1 behaviour=holding-page$" "$T/web1.events" ||
  fail "web1's script environment: $(cat "$T/web1.events")"
jq -e '.event == "run" and .node.name == "web1" and (.peers | length) == 1 and
       .peers[0].name == "db1" and .peers[0].state == "maintenance" and
       .peers[0].reason == "schema upgrade"' "$T/web1.stdin.on" >/dev/null ||
  fail "web1's script input: $(cat "$T/web1.stdin.on")"
ok "both webservers ran the holding page once, with the environment and input of SPEC.md"

c db1 set ready || fail "set ready"
for w in web1 web2; do
  wait_for "$w reverts" 10 has_lines "$T/$w.events" "^off " 1
done
ok "both webservers reverted once"

# Let several heartbeats go by, then check nothing ran again.
settled web1 10
settled web2 10
for w in web1 web2; do
  [ "$(wc -l < "$T/$w.events")" = 2 ] || fail "$w ran more than run+revert: $(cat "$T/$w.events")"
done
ok "no extra runs after several heartbeats"

# A webserver that starts while the condition already holds.
c db1 set maintenance || fail "set maintenance again"
for w in web1 web2; do
  wait_for "$w runs again" 10 has_lines "$T/$w.events" "^on " 2
done
start_agent web3
wait_for "web3 runs holding-page" 10 has_lines "$T/web3.events" "^on " 1
settled web3 10
has_lines "$T/web3.events" "^off " 0 || fail "web3 reverted at start: $(cat "$T/web3.events")"
has_lines "$T/web3.events" "^on " 1 || fail "web3 ran twice: $(cat "$T/web3.events")"
ok "an agent started while db1 is in maintenance runs once and never reverts"

c db1 set ready || fail "set ready again"
for w in web1 web2 web3; do
  wait_for "$w reverts" 10 has_lines "$T/$w.events" "^off " "$([ $w = web3 ] && echo 1 || echo 2)"
done
ok "all three revert when db1 is ready"
