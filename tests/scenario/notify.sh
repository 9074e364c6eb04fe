#!/usr/bin/env bash
# systemd integration without systemd: a tiny listener on a unix datagram
# socket plays systemd's NOTIFY_SOCKET. The agent sends READY=1 only once
# the startup sync is over, STATUS= lines that follow the members, and
# WATCHDOG=1 at half of WATCHDOG_USEC; an abstract socket name (@name)
# works too. With JOURNAL_STREAM naming stderr, log lines carry syslog
# priorities; log.level filters lines, is checked with FILE:LINE:COL and
# is reloadable.
source "$(dirname "$0")/lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s

# listen SOCKET OUT: record every datagram on SOCKET (a path, or @name for
# an abstract one) as "SECONDS MESSAGE" lines in OUT.
listen() {
  python3 -u - "$1" "$2" <<'PY' &
import socket, sys, time
addr, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
with open(out, "a") as f:
    f.write("%.3f LISTENING\n" % time.monotonic()); f.flush()
    while True:
        for line in s.recv(4096).decode().split("\n"):
            f.write("%.3f %s\n" % (time.monotonic(), line)); f.flush()
PY
  LISTENERS+=($!)
  wait_for "the listener on $1" 5 grep -q LISTENING "$2"
}
LISTENERS=()
trap 'kill "${LISTENERS[@]}" 2>/dev/null; cleanup' EXIT

# ---- a: NOTIFY_SOCKET as a path, a watchdog, stderr as the journal ----
pa=$(free_port); pb=$(free_port)
write_config a "$pa" "[web]" "[tcp://127.0.0.1:$pb]" 'sync:
  min_members: 1
  max_wait: 60s'
write_config b "$pb" "[db]" "[tcp://127.0.0.1:$pa]" 'log:
  level: warning'
listen "$T/notify.sock" "$T/notify.txt"
: > "$T/a.log"
(
  export NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000
  export JOURNAL_STREAM=$(stat -c '%d:%i' "$T/a.log")
  "$CHOREO_BIN" agent -c "$T/a.yaml" >>"$T/a.log" 2>&1 &
  echo $! > "$T/a.pid"
)
AGENT_PID[a]=$(cat "$T/a.pid")
wait_for "a answers" 10 c a status --json

# Before b runs, a waits for a member (sync.min_members): not ready yet.
pings() { grep -c ' WATCHDOG=1$' "$T/notify.txt" || true; }
pings_at_least() { [ "$(pings)" -ge "$1" ]; }
wait_for "a pings the watchdog" 10 pings_at_least 5
grep -q ' STATUS=synchronising: 1 members, 0 behaviours applied$' "$T/notify.txt" ||
  fail "no 'synchronising' STATUS= before the sync: $(cat "$T/notify.txt")"
grep -q ' READY=1$' "$T/notify.txt" && fail "READY=1 before the startup sync"
ok "before the sync: STATUS= says synchronising, no READY=1, watchdog pings"

listen "@choreo-notify-$$" "$T/notify-b.txt"
NOTIFY_SOCKET="@choreo-notify-$$" start_agent b
wait_for "READY=1 from a after the sync" 10 grep -q ' READY=1$' "$T/notify.txt"
grep -q 'synchronised' "$T/a.log" || fail "READY=1 but a's log has no sync line"
wait_for "STATUS= with both members" 5 \
  grep -q ' STATUS=2 members, 0 behaviours applied$' "$T/notify.txt"
ok "READY=1 once the sync is over; STATUS= follows the members"
wait_for "READY=1 from b on an abstract socket" 10 grep -q ' READY=1$' "$T/notify-b.txt"
grep -q 'WATCHDOG=1' "$T/notify-b.txt" && fail "b pings a watchdog it was not given"
ok "an abstract NOTIFY_SOCKET (@name); no WATCHDOG=1 without WATCHDOG_USEC"

# Watchdog pings every 200 ms (half of WATCHDOG_USEC): measure 2 seconds.
n0=$(pings)
wait_for "more pings" 10 pings_at_least $((n0 + 10))
rate=$(awk '$2 == "WATCHDOG=1" { if (p) { d += $1 - p; k++ } p = $1 }
            END { printf "%d", 1000 * d / k }' "$T/notify.txt")
[ "$rate" -ge 150 ] && [ "$rate" -le 300 ] ||
  fail "WATCHDOG=1 every ${rate} ms, not about 200"
ok "WATCHDOG=1 every ${rate} ms with WATCHDOG_USEC=400000"

# STATUS= is rate-limited: never two within a second.
gap=$(awk '$2 ~ /^STATUS=/ { if (p && (m == "" || $1 - p < m)) m = $1 - p; p = $1 }
           END { printf "%d", 1000 * (m == "" ? 9 : m) }' "$T/notify.txt")
[ "$gap" -ge 990 ] || fail "two STATUS= lines ${gap} ms apart"
ok "STATUS= lines at least a second apart"

# The journal: priorities, no timestamps.
grep -q '^<6>info: agent a (cluster test)' "$T/a.log" ||
  fail "no '<6>info:' line in a's log: $(head -3 "$T/a.log")"
grep -qE '^[0-9]{4}-' "$T/a.log" && fail "a timestamped line went to the journal"
grep -q '^<6>' "$T/b.log" && fail "b's stderr is not the journal, yet has <6>"
ok "JOURNAL_STREAM naming stderr: lines carry syslog priorities"

# log.level: warning hides b's info lines; a reload to info shows them.
grep -q ' info: ' "$T/b.log" && fail "b logged info lines at log.level warning"
sed -i 's/level: warning/level: info/' "$T/b.yaml"
c b reload >/dev/null || fail "reload b"
wait_for "b logs at info after the reload" 5 grep -q ' info: reload: ' "$T/b.log"
ok "log.level warning hides info lines; a reload changes the level"

printf 'node:\n  name: x\nlog:\n  level: loud\n' > "$T/bad.yaml"
out=$("$CHOREO_BIN" check -c "$T/bad.yaml" 2>&1) && fail "check accepted log.level loud"
echo "$out" | grep -q "$T/bad.yaml:4:10: log.level: \"loud\" is not a level" ||
  fail "log.level error without FILE:LINE:COL: $out"
ok "a wrong log.level is refused with FILE:LINE:COL"

kill_agent a TERM
wait_for "STOPPING=1 from a" 5 grep -q ' STOPPING=1$' "$T/notify.txt"
ok "STOPPING=1 when the agent stops"
