#!/usr/bin/env bash
# A key holder can't pin or cut off another node (docs/SECURITY.md "What
# a key holder can do"): forged member lists and records are either out of
# bounds or outbid by the real node (refutation), so once the forger
# stops, every agent shows every node's true state within three
# heartbeats. The forged messages are sealed with the cluster key, as a
# key holder could send them (tests/tap.c seal/send).
source "$(dirname "$0")/lib.sh"
: "${CHOREO_TAP:?CHOREO_TAP must point at the tap test helper}"
export HEARTBEAT=500ms LOST_AFTER=2s
HB_MS=500
# Three heartbeats, and a second of slack for polling three agents.
BOUND_MS=$((3 * HB_MS + 1000))

K=$("$CHOREO_BIN" keygen) || fail "choreo keygen"
printf '%s\n' "$K" > "$T/cluster.key"
chmod 600 "$T/cluster.key"
keyed_config() { # NAME PORT GROUPS JOIN
  write_config "$@"
  sed -i "/^  lost_after:/a\\  key_file: $T/cluster.key" "$T/$1.yaml"
}

pdb=$(free_port); pw1=$(free_port); pw2=$(free_port); pnowhere=$(free_port)
keyed_config db1 "$pdb" "[db]" "[tcp://127.0.0.1:$pw1]"
keyed_config w1 "$pw1" "[web]" "[tcp://127.0.0.1:$pdb]"
keyed_config w2 "$pw2" "[web]" "[tcp://127.0.0.1:$pdb, tcp://127.0.0.1:$pw1]"
start_agent db1
start_agent w1
start_agent w2
c db1 set primary || fail "set"
c w2 set serving || fail "set"
truth() { # every agent shows db1 primary, w1 ready, w2 serving
  for v in db1 w1 w2; do
    sees "$v" db1 primary && sees "$v" w1 ready && sees "$v" w2 serving || return 1
  done
}
wait_for "the cluster forms" 10 truth

now_ms() { date +%s%3N; }
TOOK=0
wait_ms() { # wait_ms WHAT MS COMMAND...: sets TOOK
  local what=$1 ms=$2 t0
  shift 2
  t0=$(now_ms)
  while ! "$@" >/dev/null 2>&1; do
    if [ $(($(now_ms) - t0)) -ge "$ms" ]; then
      fail "not within ${ms} ms: $what; views: $(for v in db1 w1 w2; do
        c "$v" status --json | jq -c '[[.node] + .peers | .[] | [.name, .state]]'; done)"
    fi
    sleep 0.02
  done
  TOOK=$(($(now_ms) - t0))
}

# forge FILE JSON-AFTER-THE-ENVELOPE FROM: a sealed message from FROM,
# stamped now.
seq=0
forge() {
  local out=$1 body=$2 from=$3
  seq=$((seq + 1))
  printf '{"v":1,"cluster":"test","from":"%s","inc":%s,"seq":%s,"time":%s,%s}' \
    "$from" "$(date +%s)" "$seq" "$(now_ms)" "$body" > "$T/forged.json"
  "$CHOREO_TAP" seal "$T/cluster.key" "$T/forged.json" "$out" || fail "tap seal"
}
# send_all FILE: the forged message to every agent, ten times 50 ms apart.
send_all() {
  for p in "$pdb" "$pw1" "$pw2"; do
    "$CHOREO_TAP" send "tcp://127.0.0.1:$p" 10 50 "$1" || fail "tap send"
  done
}
inc_of() { jq -r .inc "$T/$1.state/state.json"; }
# ONLY=a, b or c runs one attack alone (to see each fail on older code).
want() { [ -z "${ONLY:-}" ] || [ "$ONLY" = "$1" ]; }

# ---- (a) db1 "left" at incarnation 2^53-1, then at one within bounds ----
if want a; then
forge "$T/a.sealed" "\"type\":\"members\",\"members\":[{\"name\":\"db1\",\"addr\":\"tcp://127.0.0.1:$pdb\",\"inc\":9007199254740991,\"ver\":1,\"left\":true}]" ghost
send_all "$T/a.sealed"
wait_ms "db1's true state everywhere after a forged 'left' at 2^53-1" "$BOUND_MS" truth
settled w1 4
truth || fail "a forged 'left' at 2^53-1 took hold"
[ "$(metric w1 'choreo_member_entries_dropped_total{reason="future"}')" -ge 1 ] ||
  fail "w1 did not count the entry out of bounds"
ok "(a) a member entry 'db1 left' at 2^53-1 is out of bounds: dropped and counted"

far=$(($(date +%s) + 86400 - 120))
forge "$T/a2.sealed" "\"type\":\"members\",\"members\":[{\"name\":\"db1\",\"addr\":\"tcp://127.0.0.1:$pdb\",\"inc\":$far,\"ver\":1,\"left\":true}]" ghost
send_all "$T/a2.sealed"
wait_ms "db1's true state everywhere after a forged 'left' a day ahead" "$BOUND_MS" truth
[ "$(inc_of db1)" -gt "$far" ] || fail "db1 did not outbid the forged incarnation ($(inc_of db1) <= $far)"
ok "(a) 'db1 left' just under a day ahead: db1 refutes it, true everywhere in ${TOOK} ms (bound: 3 heartbeats + 1 s = ${BOUND_MS} ms)"

fi

# ---- (b) a forged address for w2 ----
if want b; then
w2inc=$(inc_of w2)
forge "$T/b.sealed" "\"type\":\"members\",\"members\":[{\"name\":\"w2\",\"addr\":\"tcp://127.0.0.1:$pnowhere\",\"inc\":$((w2inc + 5)),\"ver\":1,\"left\":false}]" ghost
send_all "$T/b.sealed"
# Cut off, w2 would see its peers lost after lost_after (2 s): watch
# for longer than that plus three heartbeats.
deadline=$(($(now_ms) + 2000 + BOUND_MS))
while [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.2; done
wait_ms "the true state everywhere after a forged address for w2" 100 truth
ok "(b) a forged address for w2 in a member list doesn't cut its inbox off"
grep -q "name conflict: tcp://127.0.0.1:$pnowhere claims this node's name w2" "$T/w2.log" ||
  fail "w2 did not log the claim of its name from another address"
c w2 status --json | jq -e --arg a "tcp://127.0.0.1:$pnowhere" '.name_conflict.addr == $a' >/dev/null ||
  fail "w2's status shows no name conflict: $(c w2 status --json | jq -c .name_conflict)"
c w2 status | grep -q "NAME CONFLICT: tcp://127.0.0.1:$pnowhere" || fail "w2's status has no conflict line"
ok "(b) w2 logs the claim of its name from another address, and status shows it"

fi

# ---- (c) db1's record forged just under a day ahead ----
if want c; then
far=$(($(date +%s) + 86400 - 60))
printf '{"v":1,"cluster":"test","from":"db1","inc":%s,"seq":1,"time":%s,"type":"state","digest":"0000000000000000","known":3,"rec":{"addr":"tcp://127.0.0.1:%s","ver":1,"left":false,"state":"maintenance","reason":"forged","since":%s,"groups":["db"],"data":{}}}' \
  "$far" "$(now_ms)" "$pdb" "$(now_ms)" > "$T/c.json"
"$CHOREO_TAP" seal "$T/cluster.key" "$T/c.json" "$T/c.sealed" || fail "tap seal"
for p in "$pw1" "$pw2"; do "$CHOREO_TAP" send "tcp://127.0.0.1:$p" 10 50 "$T/c.sealed" || fail "tap send"; done
wait_ms "db1's true state everywhere after its record was forged a day ahead" "$BOUND_MS" truth
settled w1 4
truth || fail "the forged record came back"
ok "(c) a forged state for db1 just under a day ahead: refuted, true everywhere in ${TOOK} ms (bound: ${BOUND_MS} ms)"

# And a restart of db1 keeps it so (its incarnation was saved).
kill_agent db1 KILL
start_agent db1
wait_ms "db1's true state everywhere after a restart" $((BOUND_MS + 2000)) truth
ok "(c) after a restart, db1 is true everywhere in ${TOOK} ms"
fi
