#!/usr/bin/env bash
# A behaviour script that escapes its timeout by leaving its process group
# (docs/SECURITY.md "Behaviour scripts"): it starts `setsid sleep` (a new
# session, still its child) and a double fork into a new session (an
# orphan at once), then outlives its timeout. Killing the group used to
# leave both sleeps running for good. Now the agent, a child subreaper,
# kills them with the script and reaps them: no sleep and no zombie is
# left, and the runner is free for the next action.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/behaviours_lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s

# Durations no other test uses, to find exactly these sleeps.
cat > "$T/escape.sh" <<'SH'
#!/bin/sh
setsid sleep 3171 </dev/null >/dev/null 2>&1 &
echo $! > "$EVENTS_DIR/escape.child"
(setsid sleep 3172 </dev/null >/dev/null 2>&1 & echo $! > "$EVENTS_DIR/escape.orphan")
echo started > "$EVENTS_DIR/escape.started"
exec sleep 3173
SH
chmod +x "$T/escape.sh"

behaviours="behaviours:
  - name: escape
    peers: {node: db1}
    when: {any: escape}
    run: [$T/escape.sh]
    timeout: 1s
  - name: after
    peers: {node: db1}
    when: {any: after}
    run: [$T/record.sh]"

declare -A P
for n in db1 web1; do P[$n]=$(free_port); done
write_config db1 "${P[db1]}" "[db]" "[]"
write_config web1 "${P[web1]}" "[web]" "[tcp://127.0.0.1:${P[db1]}]" "$behaviours"
for n in db1 web1; do start_agent "$n"; done
wait_for "web1 sees 2 members" 10 has_members web1 2
pid=${AGENT_PID[web1]}
cleanup_sleeps() { pkill -KILL -f '^sleep 317[123]$' 2>/dev/null || true; }
trap 'cleanup_sleeps; cleanup' EXIT

c db1 set escape >/dev/null
wait_for "the script started" 10 test -s "$T/escape.orphan"
child=$(cat "$T/escape.child") orphan=$(cat "$T/escape.orphan")
[ "$(ps -o sid= -p "$child" | tr -d ' ')" = "$child" ] ||
  fail "the setsid child did not lead its own session"
ok "the script left its group: pids $child (child) and $orphan (orphan), each in a new session"
wait_for "the script's timeout" 10 grep -q "escape: timed out" "$T/web1.log"

# gone: the process no longer exists at all, zombie included.
gone() { [ ! -e "/proc/$1" ]; }
wait_for "the setsid child is killed and reaped" 5 gone "$child"
ok "the setsid child ($child) is gone, no zombie left"
wait_for "the double-forked orphan is killed and reaped" 5 gone "$orphan"
ok "the double-forked orphan ($orphan) is gone, no zombie left"
left=$(pgrep -f '^sleep 317[123]$' | wc -l)
[ "$left" = 0 ] || fail "$left of the script's sleeps still run"
zombies=$(ps -o stat= --ppid "$pid" | grep -c Z || true)
[ "$zombies" = 0 ] || fail "$zombies zombie children of the agent"
ok "no process of the script is left, and the agent has no zombie child"

killed=$(metric web1 choreo_script_escapees_killed_total)
[ "${killed:-0}" -ge 2 ] || fail "escapees killed: ${killed:-absent}, expected 2"
ok "counted: choreo_script_escapees_killed_total $killed"

c db1 set after >/dev/null
wait_for "the next behaviour runs" 5 has_calls web1 after "" 1
ok "the runner is free: the next behaviour ran"

read -r hwm < <(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ split($0, a, ") "); split(a[2], f, " "); print (f[12] + f[13]) / hz }' "/proc/$pid/stat")
echo "# victim: peak RSS ${hwm} KiB, CPU ${cpu} s in total"
