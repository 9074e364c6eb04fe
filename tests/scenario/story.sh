#!/usr/bin/env bash
# The story end to end: db1 goes into maintenance, both webservers run their
# holding-page behaviour exactly once; db1 is ready again, both revert
# exactly once; nothing more. Then a webserver started while db1 is already
# in maintenance runs `run` once and never a revert.
source "$(dirname "$0")/lib.sh"

# record.sh (lib.sh) writes down every call with its environment and
# input (docs/CONFIGURATION.md), in $T/NODE.holding-page: the file's name
# is the CHOREO_BEHAVIOUR it was given.
install_recorder

behaviour='behaviours:
  - name: holding-page
    peers: {group: db}
    when: {any: maintenance}
    run: ['"$T"'/record.sh, "on"]
    revert: ['"$T"'/record.sh, "off"]'

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
  wait_for "$w runs holding-page" 10 has_calls "$w" holding-page "^run .* args=\[on\]$" 1
done
has_calls web1 holding-page "^run peer=db1 state=maintenance previous=ready reason=schema upgrade matching=\[db1\] node=web1/ready args=\[on\]$" 1 ||
  fail "web1's script environment: $(cat "$T/web1.holding-page")"
jq -e '.event == "run" and .node.name == "web1" and (.peers | length) == 1 and
       .peers[0].name == "db1" and .peers[0].state == "maintenance" and
       .peers[0].reason == "schema upgrade"' <(last_stdin web1 holding-page) >/dev/null ||
  fail "web1's script input: $(last_stdin web1 holding-page)"
ok "both webservers ran the holding page once, with the environment and input of docs/CONFIGURATION.md"

c db1 set ready || fail "set ready"
for w in web1 web2; do
  wait_for "$w reverts" 10 has_calls "$w" holding-page "^revert .* args=\[off\]$" 1
done
ok "both webservers reverted once"

# Let several heartbeats go by, then check nothing ran again.
settled web1 10
settled web2 10
for w in web1 web2; do
  [ "$(calls "$w" holding-page)" = 2 ] || fail "$w ran more than run+revert: $(cat "$T/$w.holding-page")"
done
ok "no extra runs after several heartbeats"

# A webserver that starts while the condition already holds.
c db1 set maintenance || fail "set maintenance again"
for w in web1 web2; do
  wait_for "$w runs again" 10 has_calls "$w" holding-page "^run .* args=\[on\]$" 2
done
start_agent web3
wait_for "web3 runs holding-page" 10 has_calls web3 holding-page "^run .* args=\[on\]$" 1
settled web3 10
has_calls web3 holding-page "^revert " 0 || fail "web3 reverted at start: $(cat "$T/web3.holding-page")"
has_calls web3 holding-page "^run .* args=\[on\]$" 1 || fail "web3 ran twice: $(cat "$T/web3.holding-page")"
ok "an agent started while db1 is in maintenance runs once and never reverts"

c db1 set ready || fail "set ready again"
for w in web1 web2 web3; do
  wait_for "$w reverts" 10 has_calls "$w" holding-page "^revert .* args=\[off\]$" "$([ $w = web3 ] && echo 1 || echo 2)"
done
ok "all three revert when db1 is ready"
