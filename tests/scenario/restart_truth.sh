#!/usr/bin/env bash
# After a restart the last action still matches the truth
# (docs/BEHAVIOURS.md "Restarts", docs/RELIABILITY.md "Restarts"):
#  - web1 ran `holding` (db in maintenance); its agent dies (kill -9, then
#    SIGTERM) while db1 goes back to ready: the restarted agent reverts it;
#  - restarted while db1 is still in maintenance: `holding` does not run
#    again, and a `{none: maintenance}` behaviour does not run on the empty
#    view a restart starts with;
#  - corrupt applied.json and members.json: a warning naming each file, no
#    crash, and every level behaviour brought to its truth once synced.
# It prints the time from a restarted agent's start to its first action.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/behaviours_lib.sh"

pdb1=$(free_port); pdb2=$(free_port); pw=$(free_port)
write_config db1 "$pdb1" "[db]" "[]"
write_config db2 "$pdb2" "[db]" "[tcp://127.0.0.1:$pdb1]"
write_config web1 "$pw" "[web]" "[tcp://127.0.0.1:$pdb1]" "$(
  echo "sync: {min_members: 2, groups: [db], max_wait: 10s}"
  echo "behaviours:"
  behaviour holding "{group: db}" "when: {any: maintenance}"
  behaviour quiet "{group: db}" "when: {none: maintenance}"
)"

start_agent db1
start_agent db2
start_agent web1
wait_for "web1 sees db1 and db2" 10 has_members web1 3
wait_for "web1 ran quiet once at start" 10 has_calls web1 quiet "^run" 1
wait_for "web1 said what it waited for" 10 has_lines "$T/web1.log" \
  "synchronised: 2 of 2 known members heard" 1
ok "a first start waits for sync.min_members and logs what it heard"

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
grep -q "synchronised: 2 of 2 known members heard" <(tail -n 20 "$T/web1.log") ||
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
reverts=$(n_calls web1 holding revert)
quiet_runs=$(n_calls web1 quiet run)
restart_web1
wait_for "web1 warned about applied.json" 10 has_lines "$T/web1.log" \
  "web1.state/applied.json: not JSON" 1
wait_for "web1 warned about members.json" 10 has_lines "$T/web1.log" \
  "web1.state/members.json: not JSON" 1
wait_for "web1 reverted holding" 15 has_calls web1 holding "^revert " $((reverts + 1))
wait_for "web1 ran quiet" 15 has_calls web1 quiet "^run " $((quiet_runs + 1))
c web1 status --json >/dev/null || fail "web1 is not running"
wait_for "applied.json rewritten" 10 \
  jq -e '.behaviours.holding.applied == "revert" and .behaviours.quiet.applied == "run"' \
  "$T/web1.state/applied.json"
ok "corrupt applied.json and members.json: warned, no crash, behaviours brought to the truth"
