#!/usr/bin/env bash
# After a restart the last action still matches the truth
# (docs/BEHAVIOURS.md "Restarts", docs/RELIABILITY.md "Restarts"):
#  - web1 ran `holding` (db in maintenance); its agent dies (kill -9, then
#    SIGTERM) while db1 goes back to ready: the restarted agent reverts it;
#  - restarted while db1 is still in maintenance: `holding` does not run
#    again, and a `{none: maintenance}` behaviour does not run on the empty
#    view a restart starts with;
#  - corrupt applied.json, members.json and applied.log: a warning naming
#    each file (the log emptied once settled), no
#    crash, and every level behaviour brought to its truth once synced.
#  - an action cut off by kill -9 (its end never saved) while the truth
#    changed: the restart brings it to the truth, both ways (applied.log);
#  - sync: {min_members, groups, max_wait}: a first start waits for what
#    it asks, and says what was missing when max_wait passed.
# It prints the time from a restarted agent's start to its first action.
#
# web1's lost_after (4s) is above nanomsg's longest reconnection gap (3s,
# agent/mesh.c): after web1 was down for a while, the others' connections
# to its inbox come back only after that gap, which the members it knew
# (members.json) are waited for.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/behaviours_lib.sh"

pdb1=$(free_port); pdb2=$(free_port); pw=$(free_port)
write_config db1 "$pdb1" "[db]" "[]"
write_config db2 "$pdb2" "[db]" "[tcp://127.0.0.1:$pdb1]"
LOST_AFTER=4s write_config web1 "$pw" "[web]" "[tcp://127.0.0.1:$pdb1]" "$(
  echo "behaviours:"
  behaviour holding "{group: db}" "when: {any: maintenance}"
  behaviour quiet "{group: db}" "when: {none: maintenance}"
)"

start_agent db1
start_agent db2
start_agent web1
wait_for "web1 sees db1 and db2" 10 has_members web1 3
wait_for "web1 ran quiet once at start" 10 has_calls web1 quiet "^run" 1
# db2 is known through db1's member list: web1 waits for it even past
# the first start's 1.5 heartbeats (scenario sync_partial).
wait_for "web1 said what it waited for" 10 has_lines "$T/web1.log" \
  "synchronised: 2 of 2 known members heard after" 1
ok "a first start logs what it waited for"

# n_calls NODE BEHAVIOUR EVENT: how many EVENT calls were recorded.
n_calls() { calls "$1" "$2" "^$3 "; }

# maintenance_then_die SIGNAL: db1 into maintenance, web1's holding runs,
# then web1's agent dies by SIGNAL.
maintenance_then_die() {
  local runs
  runs=$(n_calls web1 holding run)
  c db1 set maintenance || fail "set maintenance"
  wait_for "web1 ran holding" 10 has_calls web1 holding "^run " $((runs + 1))
  wait_for "web1 idle" 10 idle web1
  wait_for "applied.json says run" 10 \
    jq -e '.behaviours.holding.applied == "run"' "$T/web1.state/applied.json"
  kill_agent web1 "$1"
  [ "$1" = KILL ] && down_a_while
  return 0
}

# down_a_while: web1 (killed) stays down until db1 sees it lost and 2 s
# have passed: the others' reconnection gaps grow meanwhile, as they do
# when a node stays down, and a restart then hears nobody for a while.
down_a_while() {
  local from
  from=$(date +%s%N)
  wait_for "db1 sees web1 lost" 10 sees db1 web1 lost
  wait_for "web1 down for 2s" 10 elapsed_since "$from" 2000
}

# restart_web1: start web1 again; prints the monotonic start in ns.
restart_web1() {
  date +%s%N > "$T/restart_at"
  start_agent web1
}

# since_restart: ms from the last restart_web1 to now.
since_restart() {
  echo $((($(date +%s%N) - $(cat "$T/restart_at")) / 1000000))
}

for sig in KILL TERM; do
  maintenance_then_die "$sig"
  reverts=$(n_calls web1 holding revert)
  c db1 set ready || fail "set ready"
  wait_for "db2 sees db1 ready" 10 sees db2 db1 ready
  restart_web1
  wait_for "restarted web1 reverted holding" 15 \
    has_calls web1 holding "^revert " $((reverts + 1))
  [ "$sig" = KILL ] && echo "# restart to first action (revert), 3 members: $(since_restart) ms"
  grep "synchronised: " "$T/web1.log" | tail -1 | grep -q "synchronised: 2 of 2 known members heard" ||
    fail "after $sig, web1 acted without both members: $(grep synchronised "$T/web1.log" | tail -1)"
  wait_for "restarted web1 ran quiet" 10 has_calls web1 quiet "^run " \
    $(($(n_calls web1 quiet revert) + 1))
  ok "after $sig while db1 went ready, the restarted web1 reverts holding"
done

# Restarted while db1 is still in maintenance: nothing to do.
maintenance_then_die KILL
runs=$(n_calls web1 holding run)
quiet_runs=$(n_calls web1 quiet run)
synced=$(count_lines "$T/web1.log" "synchronised: ")
restart_web1
wait_for "restarted web1 synchronised" 15 has_lines "$T/web1.log" \
  "synchronised: " $((synced + 1))
grep "synchronised: " "$T/web1.log" | tail -1 | grep -q "synchronised: 2 of 2 known members heard" ||
  fail "web1 synchronised without both members: $(grep synchronised "$T/web1.log" | tail -1)"
settled web1 10
wait_for "web1 idle" 10 idle web1
[ "$(n_calls web1 holding run)" = "$runs" ] ||
  fail "holding ran again though db1 is still in maintenance: $(cat "$T/web1.holding")"
ok "restarted with db1 still in maintenance, holding does not run again"
[ "$(n_calls web1 quiet run)" = "$quiet_runs" ] ||
  fail "{none: maintenance} ran on the empty view of a restart: $(cat "$T/web1.quiet")"
ok "a {none: maintenance} behaviour does not run after a restart while db1 is in maintenance"

# Restarted with no applied.json but members.json: it still waits for db1
# and db2 before acting on `quiet`.
kill_agent web1 KILL
down_a_while
rm -f "$T/web1.state/applied.json"
quiet_runs=$(n_calls web1 quiet run)
runs=$(n_calls web1 holding run)
restart_web1
wait_for "web1 ran holding (nothing applied as far as it knows)" 15 \
  has_calls web1 holding "^run " $((runs + 1))
settled web1 10
wait_for "web1 idle" 10 idle web1
[ "$(n_calls web1 quiet run)" = "$quiet_runs" ] ||
  fail "quiet ran before db1 was heard: $(cat "$T/web1.quiet")"
ok "members.json alone keeps a restarted web1 from acting on an empty view"

# Corrupt files: a warning naming each, no crash, truth reconciled.
kill_agent web1 KILL
c db1 set ready || fail "set ready"
wait_for "db2 sees db1 ready" 10 sees db2 db1 ready
printf '{"version":1,"behaviours":{"holding":{"applied":"ru' > "$T/web1.state/applied.json"
head -c 200 /dev/urandom > "$T/web1.state/members.json"
printf 'format 1\n1 holding run 00\n' > "$T/web1.state/applied.log"
reverts=$(n_calls web1 holding revert)
quiet_runs=$(n_calls web1 quiet run)
restart_web1
wait_for "web1 warned about applied.json" 10 has_lines "$T/web1.log" \
  "web1.state/applied.json: not JSON" 1
wait_for "web1 warned about members.json" 10 has_lines "$T/web1.log" \
  "web1.state/members.json: not JSON" 1
wait_for "web1 warned about applied.log" 10 has_lines "$T/web1.log" \
  "web1.state/applied.log: line 2: FINGERPRINT is not 16 hex digits" 1
wait_for "web1 reverted holding" 15 has_calls web1 holding "^revert " $((reverts + 1))
wait_for "web1 ran quiet" 15 has_calls web1 quiet "^run " $((quiet_runs + 1))
c web1 status --json >/dev/null || fail "web1 is not running"
wait_for "applied.json rewritten" 10 \
  jq -e '.behaviours.holding.applied == "revert" and .behaviours.quiet.applied == "run"' \
  "$T/web1.state/applied.json"
wait_for "applied.log emptied once settled" 10 \
  bash -c "[ \"\$(cat '$T/web1.state/applied.log')\" = 'format 1' ]"
ok "corrupt applied.json, members.json and applied.log: warned, no crash, behaviours brought to the truth"

# sync: what a first start waits for, and what it says when max_wait ends.
pw2=$(free_port)
write_config web2 "$pw2" "[web]" "[tcp://127.0.0.1:$pdb1]" "$(
  echo "sync: {min_members: 4, groups: [db, cache], max_wait: 1500ms}"
  echo "behaviours:"
  behaviour quiet "{group: db}" "when: {none: maintenance}"
)"
start_agent web2
wait_for "web2 ran quiet" 10 has_calls web2 quiet "^run " 1
grep -q "sync.max_wait (1500 ms) passed without a full view: 3 of 3 known members heard (sync.min_members 4).*no member heard of groups: cache" "$T/web2.log" ||
  fail "web2 did not say what it missed: $(grep -i sync "$T/web2.log")"
[ "$(grep -n -e "sync.max_wait" -e "behaviour quiet: run" "$T/web2.log" | head -1 | grep -c sync.max_wait)" = 1 ] ||
  fail "web2 ran quiet before sync.max_wait: $(cat "$T/web2.log")"
ok "sync.min_members and sync.groups hold conditions back until max_wait, which says what was missing"

# An action cut off by a crash: its script did its work (it recorded its
# call) but its end was never saved in applied.json. web3's `slow` runs
# record.sh then sleeps 2 s, and web3's agent is killed during that sleep.
# The intent logged before the start (applied.log) makes the restart
# bring `slow` to the truth both ways.
pw3=$(free_port)
LOST_AFTER=4s write_config web3 "$pw3" "[web]" "[tcp://127.0.0.1:$pdb1]" "$(
  echo "behaviours:"
  echo "  - name: slow"
  echo "    peers: {group: db}"
  echo "    when: {any: maintenance}"
  echo "    run: [$T/record.sh, '2']"
  echo "    revert: [$T/record.sh, '2']"
)"
# applied_slow_is VALUE: applied.json's entry for slow says VALUE (or
# there is none and VALUE is "none").
applied_slow_is() {
  [ "$(jq -r '.behaviours.slow.applied // "none"' "$T/web3.state/applied.json" 2>/dev/null || echo none)" = "$1" ]
}
# slow_truth: the last action slow's script did ("run" or "revert").
slow_truth() {
  tail -1 "$T/web3.slow" | cut -d' ' -f1
}
c db1 set ready || fail "set ready"
start_agent web3
wait_for "web3 synchronised" 15 has_lines "$T/web3.log" "synchronised: " 1
wait_for "web3 sees db1 ready" 10 sees web3 db1 ready

# A RUN cut off, then the truth changed while web3 was down.
c db1 set maintenance || fail "set maintenance"
wait_for "web3's slow run started" 10 has_calls web3 slow "^run " 1
kill_agent web3 KILL
applied_slow_is none || fail "the end of the run was saved before the kill: the case is not tested"
c db1 set ready || fail "set ready"
wait_for "db2 sees db1 ready" 10 sees db2 db1 ready
restart_web3() {
  date +%s%N > "$T/restart_at"
  start_agent web3
}
restart_web3
wait_for "restarted web3 reverted slow" 15 has_calls web3 slow "^revert " 1
wait_for "web3 idle" 10 idle web3
wait_for "applied.json says revert" 10 applied_slow_is revert
[ "$(calls web3 slow '^run ')" = 1 ] && [ "$(calls web3 slow '^revert ')" = 1 ] ||
  fail "slow's calls after the restart: $(cat "$T/web3.slow")"
[ "$(slow_truth)" = revert ] || fail "slow's last action is not revert: $(cat "$T/web3.slow")"
grep -q "behaviour slow: its run started before the restart and its end was never saved" "$T/web3.log" ||
  fail "web3 did not say why it reconciled slow: $(grep slow "$T/web3.log")"
ok "a run cut off by kill -9 while db1 went ready is reverted once after the restart"

# A REVERT cut off, then the truth changed back while web3 was down.
c db1 set maintenance || fail "set maintenance"
wait_for "web3's slow ran" 10 has_calls web3 slow "^run " 2
wait_for "web3 idle" 10 idle web3
wait_for "applied.json says run" 10 applied_slow_is run
c db1 set ready || fail "set ready"
wait_for "web3's slow revert started" 10 has_calls web3 slow "^revert " 2
kill_agent web3 KILL
applied_slow_is run || fail "the end of the revert was saved before the kill: the case is not tested"
c db1 set maintenance || fail "set maintenance"
wait_for "db2 sees db1 in maintenance" 10 sees db2 db1 maintenance
restart_web3
wait_for "restarted web3 ran slow again" 15 has_calls web3 slow "^run " 3
wait_for "web3 idle" 10 idle web3
wait_for "applied.json says run" 10 applied_slow_is run
[ "$(calls web3 slow '^revert ')" = 2 ] || fail "slow reverted again: $(cat "$T/web3.slow")"
[ "$(slow_truth)" = run ] || fail "slow's last action is not run: $(cat "$T/web3.slow")"
ok "a revert cut off by kill -9 while db1 went back to maintenance is run again after the restart"
