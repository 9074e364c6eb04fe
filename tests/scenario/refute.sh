#!/usr/bin/env bash
# A node recovers its standing from its peers (docs/RELIABILITY.md "A node
# owns its record"). Ten kill -9 restarts 0.3 s apart run db1's
# incarnation seconds ahead of the clock (each start takes one more than
# the last); then its state file is garbage, deleted, or holds an
# incarnation ten days ahead, and db1 starts from it with a lower
# incarnation than its peers hold, or one out of bounds. Its peers must
# show its new record within two heartbeats: they tell it (their member
# list) that they hold a greater incarnation, and it outbids that.
source "$(dirname "$0")/lib.sh"

HEARTBEAT=500ms
LOST_AFTER=2s
HB_MS=500
# Two heartbeats, and a second of slack for polling two agents' status
# (each a CLI run) and for a loaded machine.
BOUND_MS=${BOUND_MS:-$((2 * HB_MS + 1000))}

pdb=$(free_port); pw1=$(free_port); pw2=$(free_port)
db_config() { # db_config STATE: db1 declaring STATE when it has no state file
  NODE_EXTRA="  state: $1" write_config db1 "$pdb" "[db]" "[tcp://127.0.0.1:$pw1]"
}
db_config ready
write_config w1 "$pw1" "[web]" "[tcp://127.0.0.1:$pdb]"
write_config w2 "$pw2" "[web]" "[tcp://127.0.0.1:$pdb, tcp://127.0.0.1:$pw1]"
start_agent w1
start_agent w2
start_agent db1
for v in w1 w2; do wait_for "$v sees db1 ready" 10 sees "$v" db1 ready; done

now_ms() { date +%s%3N; }

# wait_ms WHAT MS COMMAND...: like wait_for, with a deadline in ms; sets
# TOOK to how long it took.
wait_ms() {
  local what=$1 ms=$2 t0
  shift 2
  t0=$(now_ms)
  while ! "$@" >/dev/null 2>&1; do
    if [ $(($(now_ms) - t0)) -ge "$ms" ]; then
      fail "not within ${ms} ms: $what (w1: $(state_seen w1 db1), w2: $(state_seen w2 db1))"
    fi
    sleep 0.02
  done
  TOOK=$(($(now_ms) - t0))
}

everywhere() { sees w1 db1 "$1" && sees w2 db1 "$1" && sees db1 db1 "$1"; }

# Ten restarts, each killed 0.3 s after it began, then one more kill.
crash_loop() {
  local pid
  kill_agent db1 KILL
  for _ in $(seq 1 10); do
    "$CHOREO_BIN" agent -c "$T/db1.yaml" >>"$T/db1.log" 2>&1 &
    pid=$!
    sleep 0.3
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  ahead=$(($(jq -r .inc "$T/db1.state/state.json") - $(date +%s)))
  # Without this the case below would prove nothing.
  [ "$ahead" -ge 3 ] || fail "the crash loop left db1's incarnation only ${ahead}s ahead"
}

check_case() { # check_case KIND STATE
  local kind=$1 st=$2
  start_agent db1
  wait_ms "w1, w2 and db1 show db1 $st after a $kind state file" "$BOUND_MS" everywhere "$st"
  ok "$kind state file after a crash loop ${ahead}s ahead: db1 $st everywhere in ${TOOK} ms (bound: 2 heartbeats + 1 s polling slack = ${BOUND_MS} ms)"
  settled w1 4
  for v in w1 w2; do sees "$v" db1 "$st" || fail "$v no longer sees db1 $st: $(state_seen "$v" db1)"; done
  ok "$kind: db1 stays $st, not lost"
}

crash_loop
head -c 300 /dev/urandom > "$T/db1.state/state.json"
db_config garbage
check_case garbage garbage

crash_loop
rm -f "$T/db1.state/state.json"
db_config deleted
check_case deleted deleted

crash_loop
jq --argjson inc $(($(date +%s) + 10 * 86400)) '.inc = $inc | .state = "future"' \
  "$T/db1.state/state.json" > "$T/future.json"
mv "$T/future.json" "$T/db1.state/state.json"
check_case "ten-days-ahead" future
grep -q "saved incarnation .* is more than a day ahead" "$T/db1.log" ||
  fail "db1 did not say that its saved incarnation was out of bounds"
ok "db1 says that the saved incarnation was out of bounds"

# A change right after still reaches everyone.
c db1 set ready || fail "set ready"
wait_ms "everyone sees db1 ready" "$BOUND_MS" everywhere ready
ok "db1's next change is seen everywhere in ${TOOK} ms"
