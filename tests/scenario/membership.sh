#!/usr/bin/env bash
# Membership that heals itself: ten agents join through one seed; a killed
# agent becomes lost everywhere and its `on: [lost]` behaviours run once; a
# restarted one comes back with its persisted state; a late joiner learns
# states set before it started; a leave shows as left, not lost.
source "$(dirname "$0")/lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s

install_recorder
watch_lost='behaviours:
  - name: on-lost
    on: [lost]
    run: ['"$T"'/record.sh]
  - name: on-left
    on: [left]
    run: ['"$T"'/record.sh]'

declare -a PORT
for i in $(seq 0 9); do PORT[$i]=$(free_port); done
seed="tcp://127.0.0.1:${PORT[0]}"
write_config n0 "${PORT[0]}" "[db]" "[]" "$watch_lost"
for i in $(seq 1 9); do
  write_config "n$i" "${PORT[$i]}" "[web]" "[$seed]" "$watch_lost"
done
for i in $(seq 0 9); do start_agent "n$i"; done
for i in $(seq 0 9); do wait_for "n$i sees 10 members" 10 has_members "n$i" 10; done
ok "10 agents joined through one seed all see 10 members"

# kill -9: lost everywhere within lost_after + one heartbeat (plus the
# polling slack of the CLI), and each survivor's on-lost runs once.
c n5 set busy || fail "set busy"
for i in 0 1 9; do wait_for "n$i sees n5 busy" 5 sees "n$i" n5 busy; done
kill_agent n5 KILL
t0=$(date +%s%N)
for i in 0 1 2 3 4 6 7 8 9; do wait_for "n$i sees n5 lost" 5 sees "n$i" n5 lost; done
elapsed=$((($(date +%s%N) - t0) / 1000000))
echo "# n5 lost everywhere after ${elapsed} ms (lost_after 1000 ms, heartbeat 200 ms)"
[ "$elapsed" -lt 3000 ] || fail "lost took ${elapsed} ms"
for i in 0 1 2 3 4 6 7 8 9; do
  wait_for "n$i ran on-lost for n5" 5 has_calls "n$i" on-lost "^lost peer=n5 state=lost " 1
done
ok "kill -9: lost everywhere, on: [lost] ran once on each survivor"

start_agent n5
for i in 0 1 2 3 4 6 7 8 9; do wait_for "n$i sees n5 busy again" 5 sees "n$i" n5 busy; done
for i in 0 1 9; do has_calls "n$i" on-lost "peer=n5 " 1 || fail "on-lost ran again on n$i"; done
ok "restart: back to its persisted state everywhere"

# A late joiner learns states set before it started.
c n3 set draining --reason "late joiner test" || fail "set draining"
wait_for "n0 sees n3 draining" 5 sees n0 n3 draining
p10=$(free_port)
write_config n10 "$p10" "[web]" "[tcp://127.0.0.1:${PORT[7]}]"
start_agent n10
wait_for "n10 sees 11 members" 10 has_members n10 11
sees n10 n3 draining || fail "n10 sees n3 as $(state_seen n10 n3)"
sees n10 n5 busy || fail "n10 sees n5 as $(state_seen n10 n5)"
for i in 0 4 9; do wait_for "n$i sees n10" 5 sees "n$i" n10 ready; done
ok "a late joiner through any member learns everyone's state, and everyone learns it"

# leave: left everywhere, never lost.
c n8 leave || fail "leave"
for i in 0 1 2 3 4 5 6 7 9 10; do wait_for "n$i sees n8 left" 5 sees "n$i" n8 left; done
settled n0 10
for i in 0 1 9; do
  sees "n$i" n8 left || fail "n$i sees n8 as $(state_seen "n$i" n8) after a leave"
  has_calls "n$i" on-lost "peer=n8 " 0 || fail "n$i ran on-lost for a node that left"
  wait_for "n$i ran on-left for n8" 5 has_calls "n$i" on-left "^left peer=n8 " 1
done
ok "leave: left everywhere, not lost; on: [left] ran once"

# SIGTERM is a graceful leave too.
kill_agent n7 TERM
for i in 0 1 9; do wait_for "n$i sees n7 left" 5 sees "n$i" n7 left; done
ok "SIGTERM leaves gracefully"

# An agent whose open-files limit can't hold the cluster says so, once.
# 11 members need 2 x 11 + 64 = 86 descriptors; this one may open 80.
pfd=$(free_port)
write_config fdlow "$pfd" "[web]" "[tcp://127.0.0.1:${PORT[0]}]"
(ulimit -n 80 && exec "$CHOREO_BIN" agent -c "$T/fdlow.yaml" >>"$T/fdlow.log" 2>&1) &
fdpid=$!
wait_for "fdlow says its limit is too low" 10 grep -q \
  "members need about [0-9]* open files but the limit is 80: raise it" "$T/fdlow.log"
wait_for "fdlow sees the cluster" 10 has_members fdlow 10
has_lines "$T/fdlow.log" "open files but the limit is" 1 || fail "the warning was not said once"
kill "$fdpid"; wait "$fdpid" 2>/dev/null
ok "an open-files limit too low for the cluster is said once, with how to raise it"

# network.max_members: an agent that may hold 4 other members holds 4 of
# this cluster, counts the others it refused, and takes them once a
# reload raises the limit.
pcap=$(free_port)
NET_EXTRA="  max_members: 4" write_config capped "$pcap" "[web]" "[tcp://127.0.0.1:${PORT[0]}]"
start_agent capped
refused() { v=$(metric capped choreo_members_capped_total); [ -n "$v" ] && [ "$v" -gt 0 ]; }
wait_for "capped refuses members beyond 4" 10 refused
wait_for "capped holds 4 others" 10 has_members capped 5
settled capped
has_members capped 5 || fail "capped holds $(members capped) nodes with max_members 4"
alive() { c "$1" status --json | jq '[.peers[] | select(.state != "left" and .state != "lost")] | length + 1'; }
holds_alive() { [ "$(alive capped)" = "$(alive n0)" ]; }
NET_EXTRA="  max_members: 100" write_config capped "$pcap" "[web]" "[tcp://127.0.0.1:${PORT[0]}]"
c capped reload >/dev/null || fail "reload"
wait_for "capped holds every member alive after the reload" 15 holds_alive
ok "network.max_members: members beyond it refused and counted; a reload that raises it takes them"
