#!/usr/bin/env bash
# An agent's own stall is not blamed on its peers (docs/RELIABILITY.md):
# web1's agent is stopped (SIGSTOP) for three times lost_after while db1
# stays up and app1 is killed. Once resumed, web1 raises no lost (nor
# joined) event for db1, which was alive throughout, and still declares
# app1 lost: not at once, but after a fresh lost_after, within lost_after
# + one heartbeat of the resume.
source "$(dirname "$0")/lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s
HB_MS=200 LOST_MS=1000
SLACK_MS=600 # scheduling on a loaded machine: the timer, the script's start

cat > "$T/event.sh" <<'SH'
#!/bin/sh
echo "$(date +%s%N) $CHOREO_EVENT $CHOREO_PEER" >> "$EVENTS_DIR/$CHOREO_NODE.events"
SH
chmod +x "$T/event.sh"
export EVENTS_DIR=$T

declare -A P
for n in db1 app1 web1; do P[$n]=$(free_port); done
seed="[tcp://127.0.0.1:${P[db1]}]"
write_config db1 "${P[db1]}" "[db]" "[]"
write_config app1 "${P[app1]}" "[app]" "$seed"
write_config web1 "${P[web1]}" "[web]" "$seed" "behaviours:
  - name: record
    on: [lost, joined]
    run: [$T/event.sh]"
"$CHOREO_BIN" check -c "$T/web1.yaml" >/dev/null || fail "web1's configuration: $("$CHOREO_BIN" check -c "$T/web1.yaml" 2>&1)"

events() { count_lines "$T/web1.events" " $1 $2\$"; }
has_events() { [ "$(events "$1" "$2")" -ge "$3" ]; }

for n in db1 app1 web1; do start_agent "$n"; done
wait_for "web1 sees db1" 10 sees web1 db1 ready
wait_for "web1 sees app1" 10 sees web1 app1 ready
settled web1 10
before_db=$(($(events lost db1) + $(events joined db1)))

stop_at=$(date +%s%N)
kill -STOP "${AGENT_PID[web1]}"
kill_agent app1 KILL
wait_for "db1 sees app1 lost" 10 sees db1 app1 lost
wait_for "db1 sees the stopped web1 lost" 10 sees db1 web1 lost
# The stall itself: three times lost_after from the stop.
left_ms=$((3 * LOST_MS - ($(date +%s%N) - stop_at) / 1000000))
[ "$left_ms" -le 0 ] || sleep "$((left_ms / 1000)).$(printf '%03d' $((left_ms % 1000)))"
resume_at=$(date +%s%N)
kill -CONT "${AGENT_PID[web1]}"

wait_for "web1 declares app1 lost" 10 has_events lost app1 1
t=$(grep " lost app1\$" "$T/web1.events" | tail -n 1 | cut -d' ' -f1)
ms=$(((t - resume_at) / 1000000))
[ "$ms" -ge $((LOST_MS / 2)) ] ||
  fail "web1 declared app1 lost ${ms} ms after it resumed: at once, not after a fresh lost_after"
[ "$ms" -le $((LOST_MS + HB_MS + SLACK_MS)) ] ||
  fail "web1 declared app1 lost ${ms} ms after it resumed (lost_after ${LOST_MS} ms, heartbeat ${HB_MS} ms)"
echo "# web1 declared app1 lost ${ms} ms after it resumed" >&2
ok "a peer that died during the stall is declared lost a fresh lost_after after the resume"

wait_for "db1 sees web1 again" 10 sees db1 web1 ready
settled web1 10
sees web1 db1 ready || fail "web1 shows db1 as $(state_seen web1 db1)"
after_db=$(($(events lost db1) + $(events joined db1)))
[ "$after_db" = "$before_db" ] ||
  fail "web1 blamed its own stall on db1: $(grep ' db1$' "$T/web1.events")"
ok "web1 raises no lost or joined event for db1, alive throughout its stall"
