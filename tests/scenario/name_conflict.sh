#!/usr/bin/env bash
# Two live agents with one name (docs/PROTOCOL.md "Two agents with one
# name"): a clone of db1's machine starts an agent named db1, at another
# address, with db1's old state (maintenance). Both agents detect it and
# log an error naming both addresses; the newcomer stops with exit 1; db1
# counts it (choreo_name_conflicts_total) and shows it in status; and once
# the clone is gone, every agent shows the real db1's record within two
# heartbeats, without a restart.
source "$(dirname "$0")/lib.sh"
export HEARTBEAT=300ms LOST_AFTER=2s
HB_MS=300

pdb=$(free_port); pw1=$(free_port); pw2=$(free_port); pclone=$(free_port)
write_config db1 "$pdb" "[db]" "[tcp://127.0.0.1:$pw1]"
write_config w1 "$pw1" "[web]" "[tcp://127.0.0.1:$pdb]"
write_config w2 "$pw2" "[web]" "[tcp://127.0.0.1:$pdb, tcp://127.0.0.1:$pw1]"
start_agent db1
start_agent w1
start_agent w2
c db1 set primary || fail "set"
real() { sees w1 db1 primary && sees w2 db1 primary && sees db1 db1 primary; }
wait_for "everyone sees db1 primary" 10 real
# db1 has been running longer than a newcomer's window (ten heartbeats).
sleep_until=$(($(date +%s%3N) + 10 * HB_MS + 500))
while [ "$(date +%s%3N)" -lt "$sleep_until" ]; do sleep 0.1; done

# The clone: same name, its own address and state_dir, db1's old state.
mkdir -p "$T/clone.state"
printf '{"state":"maintenance","reason":"cloned","since":%s,"data":{},"inc":%s}\n' \
  "$(date +%s%3N)" "$(jq -r .inc "$T/db1.state/state.json")" > "$T/clone.state/state.json"
sed -e "s#127.0.0.1:$pdb#127.0.0.1:$pclone#" -e "s#$T/db1.sock#$T/clone.sock#" \
  -e "s#$T/db1.state#$T/clone.state#" "$T/db1.yaml" > "$T/clone.yaml"
t0=$(date +%s%3N)
"$CHOREO_BIN" agent -c "$T/clone.yaml" >>"$T/clone.log" 2>&1 &
clone=$!
AGENT_PID[clone]=$clone

exited() { ! kill -0 "$clone" 2>/dev/null; }
wait_for "the clone stops" 10 exited
t1=$(date +%s%3N)
wait "$clone"; rc=$?
unset "AGENT_PID[clone]"
[ "$rc" = 1 ] || fail "the clone exited with $rc, not 1"
grep -q "name conflict: a live agent at tcp://127.0.0.1:$pdb has this node's name db1 (this agent: tcp://127.0.0.1:$pclone); this agent started later and stops" "$T/clone.log" ||
  fail "the clone did not say why it stopped"
ok "the clone stops with exit 1 after $((t1 - t0)) ms, naming both addresses"

# When the clone said it (log timestamps): within two heartbeats of its
# first claim reaching db1, with 300 ms of slack for a loaded machine.
ms_of() { date -d "$1" +%s%3N; }
first=$(grep -m1 "name conflict: tcp://127.0.0.1:$pclone claims this node's name db1 (this agent: tcp://127.0.0.1:$pdb)" "$T/db1.log" | cut -d' ' -f1)
[ -n "$first" ] || fail "db1 did not log the conflict naming both addresses"
stop=$(grep -m1 "this agent started later and stops" "$T/clone.log" | cut -d' ' -f1)
gap=$(($(ms_of "$stop") - $(ms_of "$first")))
[ "$gap" -le $((2 * HB_MS + 300)) ] || fail "the clone stopped ${gap} ms after db1 saw it (bound $((2 * HB_MS + 300)))"
ok "db1 logs the conflict naming both addresses; the clone stopped ${gap} ms after db1 saw it (bound: 2 heartbeats + 300 ms)"

[ "$(metric db1 choreo_name_conflicts_total)" -ge 1 ] || fail "db1 did not count the conflict"
c db1 status --json | jq -e --arg a "tcp://127.0.0.1:$pclone" '.name_conflict.addr == $a' >/dev/null ||
  fail "db1's status shows no conflict: $(c db1 status --json | jq -c .name_conflict)"
c db1 status | grep -q "NAME CONFLICT: tcp://127.0.0.1:$pclone claims this node's name" ||
  fail "db1's human status has no conflict line"
ok "db1 counts the conflict (choreo_name_conflicts_total) and status shows it (JSON and text)"

# The real db1 everywhere within two heartbeats of the clone's exit, and
# it stays so: not left, not lost, not in the clone's maintenance.
t2=$(date +%s%3N)
wait_for "everyone sees the real db1" 5 real
took=$(($(date +%s%3N) - t2))
[ "$took" -le $((2 * HB_MS + 700)) ] || fail "the real db1 came back after ${took} ms"
settled w1 6
settled w2 6
real || fail "db1 is not primary everywhere: w1 $(state_seen w1 db1), w2 $(state_seen w2 db1)"
kill -0 "${AGENT_PID[db1]}" || fail "the real db1 stopped"
ok "the real db1's record is back everywhere ${took} ms after the clone exited (bound: 2 heartbeats + 700 ms polling), and stays, with no restart"
