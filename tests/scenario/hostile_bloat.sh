#!/usr/bin/env bash
# A key holder can't bloat an agent or blind its operator
# (docs/SECURITY.md "Memory"): 4,096 forged nodes with 32 data values of
# 1,000 bytes each (before the budget: 415 MB of memory, 132 MB on every
# `on: change` script's input, and `choreo status` failing with "message
# too large") leave the victim under 128 MiB, its peer table at its
# budget (refusals counted and warned about once), `choreo status`
# answering with a visibly truncated list, and its scripts' input bounded.
source "$(dirname "$0")/lib.sh"
FORGE="$CHOREO_SRC/tests/scenario/forge.py"
RSS_MAX_KB=$((128 * 1024))
# CTL_LIST_BYTES_MAX (8 MiB) of peers, plus this node and the event.
STDIN_MAX=$((8 * 1024 * 1024 + 64 * 1024))

K=$("$CHOREO_BIN" keygen) || fail "choreo keygen"
printf '%s\n' "$K" > "$T/cluster.key"
chmod 600 "$T/cluster.key"
cat > "$T/size.sh" <<SH
#!/bin/sh
wc -c >> "$T/stdin.sizes"
SH
chmod +x "$T/size.sh"
pv=$(free_port)
write_config victim "$pv" "[web]" "[]" "behaviours:
  - name: seen
    on: change
    run: [$T/size.sh]"
sed -i "/^  lost_after:/a\\  key_file: $T/cluster.key" "$T/victim.yaml"
# The bound is on the agent's memory, not on the sanitizer's quarantine
# of freed blocks (256 MiB by default).
ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=8" start_agent victim
pid=${AGENT_PID[victim]}
kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
rss0=$(kb VmRSS)
cpu0=$(cpu_ticks)

python3 "$FORGE" bloat "$T/cluster.key" "tcp://127.0.0.1:$pv" 4096 32 1000 \
  > "$T/forge.out" 2>&1 &
forger=$!
# While the forger sends, the operator still gets answers.
slowest=0
while kill -0 "$forger" 2>/dev/null; do
  t0=$(date +%s%3N)
  c victim status --json > "$T/status.json" || fail "choreo status failed during the flood"
  t=$(($(date +%s%3N) - t0))
  [ "$t" -gt "$slowest" ] && slowest=$t
  sleep 0.5
done
wait "$forger" || fail "forge.py: $(cat "$T/forge.out")"
cpu1=$(cpu_ticks)
refused_at_budget() {
  [ "$(metric victim 'choreo_peer_table_refused_total{reason="budget"}')" -gt 0 ]
}
wait_for "the victim's table reaches its budget" 20 refused_at_budget
# Scripts coalesce `change` bursts: wait until the last run is done.
scripts_idle() {
  [ "$(metric victim choreo_scripts_running)" = 0 ] &&
    [ "$(metric victim choreo_scripts_queued)" = 0 ]
}
wait_for "no script running" 30 scripts_idle

bytes=$(metric victim choreo_peer_table_bytes)
max=$(metric victim choreo_peer_table_bytes_max)
[ "$bytes" -le "$max" ] || fail "the peer table holds $bytes bytes, over its budget of $max"
warned=$(count_lines "$T/victim.log" "the peer table holds .* bytes, its budget is")
# At most once a minute (log_allow): the test lasts a minute or two.
[ "$warned" -ge 1 ] && [ "$warned" -le 2 ] ||
  fail "the budget was warned about $warned times, expected once a minute"
ok "the peer table stops at its budget ($bytes of $max bytes), refusals counted ($(metric victim 'choreo_peer_table_refused_total{reason="budget"}')), warned once a minute"

hwm=$(kb VmHWM)
echo "# victim RSS: ${rss0} kB before, peak ${hwm} kB; CPU $(((cpu1 - cpu0) * 10)) ms while the forger sent; slowest status ${slowest} ms"
[ "$hwm" -lt "$RSS_MAX_KB" ] || fail "the victim's peak RSS was $hwm kB (bound: $RSS_MAX_KB kB)"
ok "the victim's peak RSS stays under 128 MiB ($hwm kB)"

c victim status --json > "$T/status.json" || fail "choreo status --json failed"
shown=$(jq '.peers | length' "$T/status.json")
cut=$(jq '.truncated // 0' "$T/status.json")
[ "$shown" -gt 0 ] && [ "$cut" -gt 0 ] ||
  fail "status shows $shown peers, truncated $cut: expected a truncated list"
size=$(stat -c %s "$T/status.json")
[ "$size" -le "$STDIN_MAX" ] || fail "status is $size bytes"
c victim status > "$T/status.txt" || fail "choreo status failed"
grep -q "^\.\.\. [0-9]* more peers not shown" "$T/status.txt" ||
  fail "choreo status doesn't say the list was truncated: $(tail -n 2 "$T/status.txt")"
ok "choreo status answers: $shown peers shown, \"truncated\": $cut, $size bytes (slowest during the flood: ${slowest} ms)"

[ -s "$T/stdin.sizes" ] || fail "the on: change script never ran"
biggest=$(sort -n "$T/stdin.sizes" | tail -n 1)
[ "$biggest" -le "$STDIN_MAX" ] || fail "a script's input was $biggest bytes (bound: $STDIN_MAX)"
ok "an on: change script's input stays bounded ($(wc -l < "$T/stdin.sizes") runs, largest $biggest bytes)"
