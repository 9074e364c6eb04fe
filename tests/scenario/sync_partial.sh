#!/usr/bin/env bash
# A first start does not act on a partial view (docs/PROTOCOL.md "Startup
# sync"): web1 learns db2 from db1's answer, but db2 is stopped (SIGSTOP)
# past web1's startup window. web1 waits for db2 instead of evaluating its
# conditions on db1 alone, so `quiet` ({none: maintenance}) never runs
# while db2 is in maintenance, and `holding` runs once.
#
# A member heard of that stays silent is waited for up to lost_after past
# the window: web2 learns db2 the same way while db2 stays stopped, acts
# once lost_after has passed, and says so.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/behaviours_lib.sh"
# db1 keeps a stopped db2 alive in its view for 5 s, so that its answers
# list db2 for as long as the test holds db2 stopped.
export HEARTBEAT=200ms LOST_AFTER=5s

behaviours="behaviours:
$(behaviour holding '{group: db}' 'when: {any: maintenance}')
$(behaviour quiet '{group: db}' 'when: {none: maintenance}')"

pdb1=$(free_port); pdb2=$(free_port); pw1=$(free_port); pw2=$(free_port)
write_config db1 "$pdb1" "[db]" "[]"
write_config db2 "$pdb2" "[db]" "[tcp://127.0.0.1:$pdb1]"
write_config web1 "$pw1" "[web]" "[tcp://127.0.0.1:$pdb1]" "$behaviours"
LOST_AFTER=2s write_config web2 "$pw2" "[web]" "[tcp://127.0.0.1:$pdb1]" "$behaviours"
start_agent db1
start_agent db2
wait_for "db1 sees db2" 10 sees db1 db2 ready
c db2 set maintenance || fail "set db2 maintenance"
wait_for "db1 sees db2 in maintenance" 10 sees db1 db2 maintenance

# web1 starts while db2 is stopped; db2 resumes 1 s (more than three
# startup windows of 300 ms) after web1 answered.
kill -STOP "${AGENT_PID[db2]}"
start_agent web1
answered=$(date +%s%N)
wait_for "web1 heard db1" 10 sees web1 db1 ready
wait_for "1 s since web1 answered" 10 elapsed_since "$answered" 1000
has_lines "$T/web1.log" "synchronised: " 0 ||
  fail "web1 synchronised while db2 was silent: $(grep synchronised "$T/web1.log")"
expect_calls web1 quiet 0
expect_calls web1 holding 0
kill -CONT "${AGENT_PID[db2]}"
wait_for "web1 synchronised" 10 has_lines "$T/web1.log" "synchronised: 2 of 2 known members heard" 1
wait_for "web1 ran holding" 10 has_calls web1 holding "^run peer= " 1
settled web1 10
wait_for "web1 idle" 10 idle web1
expect_calls web1 quiet 0
expect_calls web1 holding 1
ok "a member heard of but silent past the startup window is waited for: holding runs once, quiet never"

# web2 (lost_after 2s): db2 stays stopped, so web2 acts on db1 alone once
# lost_after has passed since the window, and says who it heard.
kill -STOP "${AGENT_PID[db2]}"
start_agent web2
answered=$(date +%s%N)
wait_for "web2 heard db1" 10 sees web2 db1 ready
wait_for "web2 synchronised" 10 has_lines "$T/web2.log" "synchronised: " 1
elapsed_since "$answered" 1000 ||
  fail "web2 stopped waiting for db2 before lost_after: $(grep synchronised "$T/web2.log")"
grep -q "synchronised: 2 of [23] known members heard" "$T/web2.log" ||
  fail "web2's sync: $(grep synchronised "$T/web2.log")"
kill -CONT "${AGENT_PID[db2]}"
ok "a member heard of and silent for lost_after is not waited for longer"
