#!/usr/bin/env bash
# Scripts that misbehave never block the agent (docs/BEHAVIOURS.md "When
# scripts misbehave"): one that hangs is killed at its timeout with its
# whole process group while other behaviours keep running; one that prints
# 100 MB costs no memory; a failing one is retried then counted; one killed
# by a signal, one that closes its output early and one that leaves a daemon
# behind are each handled and logged.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/behaviours_lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s

s() { # s NAME BODY: a script $T/NAME.sh
  printf '#!/bin/sh\n%s\n' "$2" > "$T/$1.sh"
  chmod +x "$T/$1.sh"
}
# Its process group (it leads one) and two children, one deaf to SIGTERM;
# then it hangs.
s hang 'echo $$ > "$EVENTS_DIR/hang.pgid"
sleep 1000 &
sh -c "trap \"\" TERM; sleep 1000" &
echo hanging
sleep 1000'
s flood 'yes "flood line of output" | head -c 100000000'
s fail 'echo "try $(date +%s%N)" >> "$EVENTS_DIR/fail.tries"; echo "cannot do it" >&2; exit 3'
s signal 'echo "about to die"; kill -KILL $$'
s closeout 'exec >&- 2>&-; sleep 0.3; echo finished > "$EVENTS_DIR/closeout.done"'
s daemon 'sh -c "echo \$\$ > \"$EVENTS_DIR/daemon.pid\"; exec sleep 1000" &
echo "daemon started"; exit 0'

# One behaviour per script, each on its own state of db1.
b() { # b NAME [EXTRA]
  printf '  - name: %s\n    peers: {node: db1}\n    when: {any: %s}\n    run: [%s]\n%s\n' \
    "$1" "$1" "$T/$1.sh" "${2:-}"
}
behaviours="behaviours:
$(b hang '    timeout: 2s')
$(b flood)
$(b fail '    retries: 2')
$(b signal)
$(b closeout)
$(b daemon)
$(behaviour other '{node: app1}' 'on: [state]')"

declare -A P
for n in db1 app1 web1; do P[$n]=$(free_port); done
seed="[tcp://127.0.0.1:${P[db1]}]"
write_config db1 "${P[db1]}" "[db]" "[]"
write_config app1 "${P[app1]}" "[app]" "$seed"
write_config web1 "${P[web1]}" "[web]" "$seed" "$behaviours"
for n in db1 app1 web1; do start_agent "$n"; done
wait_for "web1 sees 3 members" 10 has_members web1 3
pid=${AGENT_PID[web1]}
cleanup_daemon() { [ ! -f "$T/daemon.pid" ] || kill "$(cat "$T/daemon.pid")" 2>/dev/null; }
trap 'cleanup_daemon; cleanup' EXIT

group_alive() { pgrep -g "$1" >/dev/null; }
group_gone() { ! pgrep -g "$1" >/dev/null; }

# ---- a hang: the agent reacts to others meanwhile; at the timeout the
# whole group goes, the child deaf to SIGTERM included.
timeouts=$(metric web1 choreo_script_timeouts_total)
c db1 set hang || fail "set hang"
wait_for "hang starts" 5 test -s "$T/hang.pgid"
pgid=$(cat "$T/hang.pgid")
wait_for "hang's children start" 5 test "$(pgrep -g "$pgid" | wc -l)" -ge 4
c app1 set busy || fail "set app1 busy"
wait_for "other runs during the hang" 5 has_calls web1 other "^state peer=app1 state=busy " 1
group_alive "$pgid" || fail "hang's group was gone before its timeout"
wait_for "hang's group is killed" 5 group_gone "$pgid"
grep -q "hang: timed out after 2000 ms" "$T/web1.log" || fail "the timeout is not logged"
grep -q "hang: hanging" "$T/web1.log" || fail "hang's output is not in the log"
[ "$(metric web1 choreo_script_timeouts_total)" = $((timeouts + 1)) ] || fail "timeouts not counted"
ok "a hanging script: other behaviours ran meanwhile; at its timeout its whole process group was killed and it was logged and counted"

# ---- 100 MB of output: memory stays bounded, the rest is dropped and
# counted.
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status"; }
before=$(hwm)
dropped=$(metric web1 choreo_script_output_dropped_bytes_total)
c db1 set flood || fail "set flood"
wait_for "flood is dropped and counted" 30 grep -q "flood: output truncated" "$T/web1.log"
wait_for "flood is over" 10 idle web1
after=$(hwm)
growth=$(((after - before) / 1024))
echo "# VmHWM ${before} kB before, ${after} kB after 100 MB of output (+${growth} MB)"
[ "$growth" -lt 64 ] || fail "the agent's peak memory grew by ${growth} MB"
d=$(($(metric web1 choreo_script_output_dropped_bytes_total) - dropped))
[ "$d" -ge $((100000000 - 65536)) ] || fail "only $d bytes counted as dropped"
lines=$(grep -c "flood: flood line of output" "$T/web1.log")
[ "$lines" -le 200 ] || fail "$lines lines of flood logged (at most 200)"
ok "a script printing 100 MB: peak memory +${growth} MB, ${lines} lines logged, ${d} bytes dropped and counted"

# ---- a failing script with retries: 2 runs 3 times, then one failure.
failures=$(metric web1 choreo_script_failures_total)
c db1 set fail || fail "set fail"
wait_for "fail is given up" 10 grep -q "fail: failed after 3 tries: exited with status 3" "$T/web1.log"
[ "$(wc -l < "$T/fail.tries")" = 3 ] || fail "fail ran $(wc -l < "$T/fail.tries") times"
[ "$(metric web1 choreo_script_failures_total)" = $((failures + 1)) ] || fail "the failure is not counted once"
grep -q "fail: cannot do it" "$T/web1.log" || fail "fail's stderr is not in the log"
ok "a failing script with retries: 2 ran 3 times, then was logged and counted as one failure"

# ---- killed by a signal: a failure, logged.
failures=$(metric web1 choreo_script_failures_total)
c db1 set signal || fail "set signal"
wait_for "signal is logged" 5 grep -q "signal: failed after 1 try: killed by signal 9" "$T/web1.log"
[ "$(metric web1 choreo_script_failures_total)" = $((failures + 1)) ] || fail "the signal is not counted"
ok "a script killed by a signal is logged and counted as a failure"

# ---- closes its output early and goes on: it ends when it exits, and
# succeeds.
failures=$(metric web1 choreo_script_failures_total)
c db1 set closeout || fail "set closeout"
wait_for "closeout finishes" 5 test -s "$T/closeout.done"
wait_for "closeout is over" 5 idle web1
[ "$(metric web1 choreo_script_failures_total)" = "$failures" ] || fail "closeout counted as a failure"
ok "a script that closes its output early runs to its end and succeeds"

# ---- leaves a daemon holding its output: the run ends with the script,
# the daemon is left alone, and this is logged.
c db1 set daemon || fail "set daemon"
wait_for "daemon starts" 5 test -s "$T/daemon.pid"
wait_for "the daemon's run is over" 5 idle web1
wait_for "the left-over is logged" 5 grep -q "daemon: exited, but a process it started still holds its output" "$T/web1.log"
kill -0 "$(cat "$T/daemon.pid")" || fail "the daemon was killed"
[ "$(metric web1 choreo_script_failures_total)" = "$failures" ] || fail "daemon counted as a failure"
c app1 set ready || fail "set app1 ready"
wait_for "other still runs" 5 has_calls web1 other "^state peer=app1 state=ready " 1
ok "a script that leaves a daemon behind: its run ends, the daemon lives on, and it is logged"
