#!/usr/bin/env bash
# No flood can grow an agent's log faster than a bounded rate
# (docs/SECURITY.md "Log volume"): 10,000 messages in 10 s from one
# source, in turn unauthenticated, not JSON and sealed but never proved
# fresh, are each counted by reason, and each reason is said once at
# warning level (once a minute per sender and reason; at most 60 such
# lines a minute in all). Before, every refusal was logged at debug level
# only: the operator saw nothing at the default level, and everything,
# line by line, with CHOREO_DEBUG.
source "$(dirname "$0")/lib.sh"
FORGE="$CHOREO_SRC/tests/scenario/forge.py"
# The three reasons' warnings plus the line saying what was held back
# once a minute, and a few lines of the agent's own (start, sync).
LINES_MAX=10

K=$("$CHOREO_BIN" keygen) || fail "choreo keygen"
printf '%s\n' "$K" > "$T/cluster.key"
chmod 600 "$T/cluster.key"
pv=$(free_port)
write_config victim "$pv" "[web]" "[]"
sed -i "/^  lost_after:/a\\  key_file: $T/cluster.key" "$T/victim.yaml"
start_agent victim
lines0=$(wc -l < "$T/victim.log")
dropped() { metric victim "choreo_messages_dropped_total{reason=\"$1\"}"; }

t0=$(date +%s)
python3 "$FORGE" flood "$T/cluster.key" "tcp://127.0.0.1:$pv" 10000 10 > "$T/forge.out" 2>&1 ||
  fail "forge.py: $(cat "$T/forge.out")"
counted() {
  [ "$(dropped unauthenticated)" -ge 3000 ] && [ "$(dropped not_json)" -ge 3000 ] &&
    [ "$(dropped stale)" -ge 3000 ]
}
wait_for "the refusals are counted" 10 counted
secs=$(($(date +%s) - t0))
ok "refusals counted by reason: unauthenticated $(dropped unauthenticated), not_json $(dropped not_json), stale $(dropped stale)"

grown=$(($(wc -l < "$T/victim.log") - lines0))
echo "# the log grew by $grown lines in ${secs} s of flood"
[ "$grown" -le "$LINES_MAX" ] || fail "the log grew by $grown lines (bound: $LINES_MAX): $(tail -n 20 "$T/victim.log")"
ok "the log grew by $grown lines in ${secs} s (bound: $LINES_MAX)"

has_lines "$T/victim.log" "warning: refused a message: unauthenticated" 1 ||
  fail "unauthenticated refusals not said once at warning level"
has_lines "$T/victim.log" "warning: refused a message: not_json" 1 ||
  fail "not_json refusals not said once at warning level"
has_lines "$T/victim.log" "warning: refused a message from intruder: stale" 1 ||
  fail "stale refusals from intruder not said once at warning level"
ok "each reason said once at warning level, naming the sender when known"
c victim status --json > /dev/null || fail "status after the flood"
