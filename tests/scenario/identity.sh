#!/usr/bin/env bash
# Identity required (docs/SECURITY.md "Identity"): an attacker who holds
# the cluster key but not db1's signing key can't speak for db1. Every
# forgery below is sealed with the cluster key and sent to every agent;
# each is dropped and counted, nothing changes in any view, and the
# behaviour that watches db1 never runs. Then the operator revokes w1's
# certificate on db1 alone, and every other agent takes w1 for lost
# within two heartbeats; a cloned node (same key and certificate) is a
# name conflict.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/behaviours_lib.sh"
source "$(dirname "$0")/identity_lib.sh"
: "${CHOREO_TAP:?CHOREO_TAP must point at the tap test helper}"
export HEARTBEAT=500ms LOST_AFTER=2s
HB_MS=500

ch keygen > "$T/cluster.key" || fail "keygen"
chmod 600 "$T/cluster.key"
secret "$T/op.key"
secret "$T/rogue-op.key"
OP=$(ch pubkey "$T/op.key") || fail "pubkey"
issue() { # issue NODE GROUPS: its key and certificate
  [ -f "$T/$1.sk" ] || secret "$T/$1.sk"
  issue_cert "$T/$1.cert" "$T/op.key" "$1" "$2" "$T/$1.sk"
}
issue db1 db
issue w1 web
issue w2 web

id_config() { # NAME PORT GROUPS JOIN [EXTRA]
  write_config "$@"
  sed -i "/^  lost_after:/a\\  key_file: $T/cluster.key" "$T/$1.yaml"
  cat >> "$T/$1.yaml" <<YAML
identity:
  key_file: $T/$1.sk
  cert_file: $T/$1.cert
  operators: [$OP]
  required: true
YAML
}

install_recorder
pdb=$(free_port); pw1=$(free_port); pw2=$(free_port); ptap=$(free_port)
# db1 also publishes to a wiretap: what an attacker on the network records.
id_config db1 "$pdb" "[db]" "[tcp://127.0.0.1:$pw1, tcp://127.0.0.1:$ptap]"
mkdir "$T/tap"
"$CHOREO_TAP" record "tcp://127.0.0.1:$ptap" "$T/tap" 2>>"$T/tap.log" &
tap_pid=$!
id_config w1 "$pw1" "[web]" "[tcp://127.0.0.1:$pdb]"
id_config w2 "$pw2" "[web]" "[tcp://127.0.0.1:$pdb, tcp://127.0.0.1:$pw1]" "$(
  echo "behaviours:"
  behaviour holding "{group: db}" "when: {any: maintenance}"
)"
"$CHOREO_BIN" check -c "$T/w2.yaml" >/dev/null || fail "check w2: $("$CHOREO_BIN" check -c "$T/w2.yaml" 2>&1)"
start_agent db1
start_agent w1
start_agent w2
c db1 set primary || fail "set"
truth() {
  for v in db1 w1 w2; do
    sees "$v" db1 primary && sees "$v" w1 ready && sees "$v" w2 ready || return 1
  done
}
wait_for "the cluster forms with identity" 10 truth
[ "$(metric w2 choreo_identity_unsigned_total)" = 0 ] || fail "unsigned records accepted"
verified=$(metric w2 choreo_identity_verifications_total)
[ "$verified" -ge 3 ] || fail "w2 verified $verified signatures"
ok "three agents with identity required form the cluster (w2 checked $verified signatures)"

now_ms() { date +%s%3N; }
seq=100000
# envelope FROM INC TYPE BODY: a message from FROM, stamped now.
envelope() {
  seq=$((seq + 1))
  printf '{"v":1,"cluster":"test","from":"%s","inc":%s,"seq":%s,"time":%s,"type":"%s",%s}' \
    "$1" "$2" "$seq" "$(now_ms)" "$3" "$4"
}
# record_body STATE GROUPS [LEFT]: a state message's body for db1.
record_body() {
  printf '"digest":"0000000000000000","known":3,"rec":{"addr":"tcp://127.0.0.1:%s","ver":99,"left":%s,"state":"%s","reason":"forged","since":%s,"groups":%s,"data":{}}' \
    "$pdb" "${3:-false}" "$1" "$(now_ms)" "$2"
}
# sealed NAME: seal $T/NAME.json with the cluster key into $T/NAME.sealed.
sealed() { "$CHOREO_TAP" seal "$T/cluster.key" "$T/$1.json" "$T/$1.sealed" || fail "tap seal"; }
send_all() {
  for p in "$pdb" "$pw1" "$pw2"; do
    "$CHOREO_TAP" send "tcp://127.0.0.1:$p" 6 50 "$T/$1.sealed" || fail "tap send"
  done
}
db1_inc=$(jq -r .inc "$T/db1.state/state.json")
dropped() { metric w2 "choreo_identity_dropped_total{reason=\"$1\"}"; }
# attack NAME REASON: send $T/NAME.sealed; w2 counts it as REASON and
# nothing changes anywhere.
attack() {
  local name=$1 reason=$2 what=$3 before
  before=$(dropped "$reason")
  send_all "$name"
  wait_for "w2 counts the $what as $reason" 10 at_least w2 "choreo_identity_dropped_total{reason=\"$reason\"}" $((before + 1))
  settled w2 4
  truth || fail "$what changed a view: $(for v in db1 w1 w2; do c "$v" status --json | jq -c '[[.node] + .peers | .[] | [.name, .state]]'; done)"
  expect_calls w2 holding 0
  ok "$what: dropped ($reason), nothing changed, no behaviour ran"
}
at_least() { local v; v=$(metric "$1" "$2"); [ -n "$v" ] && [ "$v" -ge "$3" ]; }

# (1) a forged state for db1, unsigned
envelope db1 "$db1_inc" state "$(record_body maintenance '["db"]')" > "$T/f1.json"
sealed f1
attack f1 unsigned "a forged unsigned state for db1"

# (2) the same, signed with w1's key and certificate (a compromised w1)
envelope db1 "$db1_inc" state "$(record_body maintenance '["db"]')" > "$T/f2.json"
"$CHOREO_TAP" sign "$T/w1.sk" test "$T/f2.json" "$T/f2.signed" "$T/w1.cert" || fail "tap sign"
cp "$T/f2.signed" "$T/f2.json"; sealed f2
attack f2 name "db1's state signed by w1 (w1's certificate names w1)"

# (3) db1 "left" in a member list: at incarnation 2^53-1 (out of bounds
# with or without identity) and at one just ahead of db1's (refused for
# want of db1's signature)
envelope ghost 1 members "\"members\":[{\"name\":\"db1\",\"addr\":\"tcp://127.0.0.1:$pdb\",\"inc\":9007199254740991,\"ver\":1,\"left\":true},{\"name\":\"db1\",\"addr\":\"tcp://127.0.0.1:$pdb\",\"inc\":$((db1_inc + 10)),\"ver\":1,\"left\":true}]" > "$T/f3.json"
sealed f3
before=$(metric w2 choreo_identity_member_entries_refused_total)
before_future=$(metric w2 'choreo_member_entries_dropped_total{reason="future"}')
send_all f3
wait_for "w2 refuses the forged left" 10 at_least w2 choreo_identity_member_entries_refused_total $((before + 1))
wait_for "w2 drops the entry at 2^53-1" 10 at_least w2 'choreo_member_entries_dropped_total{reason="future"}' $((before_future + 1))
settled w2 4
truth || fail "the forged left changed a view"
[ "$(jq -r .inc "$T/db1.state/state.json")" = "$db1_inc" ] || fail "db1 refuted a claim it should not have seen"
expect_calls w2 holding 0
ok "a forged 'left' for db1 in a member list, at 2^53-1 and just ahead: refused, nothing changed"

# (4) a forged address for w2 in a member list: w2 keeps hearing everyone
envelope ghost 1 members "\"members\":[{\"name\":\"w2\",\"addr\":\"tcp://127.0.0.1:1\",\"inc\":$((db1_inc + 5)),\"ver\":50,\"left\":false}]" > "$T/f4.json"
sealed f4
before=$(metric db1 choreo_identity_member_entries_refused_total)
send_all f4
wait_for "db1 refuses the forged address" 10 at_least db1 choreo_identity_member_entries_refused_total $((before + 1))
settled w2 4
c db1 set maintenance --reason "real change" || fail "set"
wait_for "w2 still hears db1's real change" 5 sees w2 db1 maintenance
wait_for "w2's behaviour runs on the real change" 5 has_calls w2 holding "^run peer=db1 " 1
c db1 set primary || fail "set"
wait_for "w2 sees db1 primary" 5 sees w2 db1 primary
wait_for "w2's behaviour reverts" 5 has_calls w2 holding "^revert " 1
for v in db1 w1; do
  [ "$(c "$v" peers --json | jq -r '.[] | select(.name == "w2") | .addr')" = "tcp://127.0.0.1:$pw2" ] ||
    fail "$v holds a forged address for w2: $(c "$v" peers --json | jq -c '.[] | select(.name == "w2")')"
done
rm -f "$T/w2.holding" "$T/w2.holding.count"
ok "a forged address for w2 in a member list: ignored, w2 hears db1's real changes"

# (5) a forged future incarnation for db1 with a signature that isn't db1's
envelope db1 $((db1_inc + 40000)) state "$(record_body maintenance '["db"]')" > "$T/f5.json"
"$CHOREO_TAP" sign "$T/w2.sk" test "$T/f5.json" "$T/f5.signed" || fail "tap sign"
jq -c --slurpfile c "$T/db1.cert" '.cert = $c[0]' "$T/f5.signed" > "$T/f5.json"
sealed f5
attack f5 signature "db1 at a future incarnation, signed with another key under db1's certificate"

# (6) w1 claiming group db outside its certificate (signed by w1 itself)
w1_inc=$(jq -r .inc "$T/w1.state/state.json")
envelope w1 $((w1_inc + 1)) state "$(record_body maintenance '["web","db"]' | sed "s/:$pdb/:$pw1/")" > "$T/f6.json"
"$CHOREO_TAP" sign "$T/w1.sk" test "$T/f6.json" "$T/f6.signed" "$T/w1.cert" || fail "tap sign"
cp "$T/f6.signed" "$T/f6.json"; sealed f6
attack f6 groups "w1 claiming group db outside its certificate"

# (7) a certificate from an operator nobody trusts
secret "$T/evil.sk"
issue_cert "$T/evil.cert" "$T/rogue-op.key" db1 db "$T/evil.sk"
envelope db1 "$db1_inc" state "$(record_body maintenance '["db"]')" > "$T/f7.json"
"$CHOREO_TAP" sign "$T/evil.sk" test "$T/f7.json" "$T/f7.signed" "$T/evil.cert" || fail "tap sign"
cp "$T/f7.signed" "$T/f7.json"; sealed f7
attack f7 untrusted "db1's state under a certificate from an untrusted operator"

# (8) an expired certificate (the operator's, for another key of db1's)
secret "$T/old.sk"
issue_cert "$T/old.cert" "$T/op.key" db1 db "$T/old.sk" \
  --not-before $(($(date +%s) - 7200)) --not-after $(($(date +%s) - 3600))
envelope db1 "$db1_inc" state "$(record_body maintenance '["db"]')" > "$T/f8.json"
"$CHOREO_TAP" sign "$T/old.sk" test "$T/f8.json" "$T/f8.signed" "$T/old.cert" || fail "tap sign"
cp "$T/f8.signed" "$T/f8.json"; sealed f8
attack f8 expired "db1's state under an expired certificate"

# (9) db1's own signed message, recorded, replayed with the largest
# sequence number: db1's later heartbeats and changes still count.
kill -TERM "$tap_pid"; wait "$tap_pid" 2>/dev/null || true
last=""
for f in $(ls -r "$T"/tap/*.msg); do
  "$CHOREO_TAP" open "$T/cluster.key" "$f" "$T/f9.open" 2>/dev/null || continue
  if jq -e '.type == "state" and .rec.state == "primary"' "$T/f9.open" >/dev/null 2>&1; then
    last=$f; break
  fi
done
[ -n "$last" ] || fail "the tap recorded no state of db1"
jq -c '.seq = 9007199254740991' "$T/f9.open" > "$T/f9.json"
sealed f9
send_all f9
settled w2 4
sleep_hb() { local t0; t0=$(now_ms); wait_for "$1" 10 bash -c "[ \$((\$(date +%s%3N) - $t0)) -ge $2 ]"; }
sleep_hb "lost_after passes" 2500
sees w2 db1 primary || fail "db1's heartbeats were taken for replays after the forged sequence number: w2 shows $(state_seen w2 db1)"
c db1 set maintenance --reason "after the replay" || fail "set"
wait_for "w2 sees db1's change after the replay" 5 sees w2 db1 maintenance
wait_for "w2's behaviour runs" 5 has_calls w2 holding "^run peer=db1 " 1
c db1 set primary || fail "set"
wait_for "w2's behaviour reverts" 5 has_calls w2 holding "^revert " 1
ok "db1's own message replayed with sequence number 2^53-1: db1 stays alive, its next change reaches w2"

# ---- revocation: w1 revoked on db1 alone; lost everywhere within two
# heartbeats, with no file edited anywhere else.
ch cert revoke --operator-key "$T/op.key" "$T/w1.cert" > "$T/w1.rev" || fail "cert revoke"
t0=$(now_ms)
out=$(c db1 revoke "$T/w1.rev" 2>&1) || fail "choreo revoke: $out"
lost_everywhere() { sees db1 w1 lost && sees w2 w1 lost; }
wait_for "w1 lost on db1 and w2" 10 lost_everywhere
took=$(($(now_ms) - t0))
[ "$took" -le $((2 * HB_MS + 1000)) ] || fail "w1 lost after $took ms, more than two heartbeats (and 1 s of polling)"
[ "$(metric w2 choreo_identity_revocations)" = 1 ] || fail "w2 holds no revocation"
ok "w1 revoked on db1 alone: lost on db1 and w2 after $took ms (heartbeat $HB_MS ms)"
settled w2 4
sees w2 w1 lost || fail "w1 came back on w2"
at_least w2 'choreo_identity_dropped_total{reason="revoked"}' 1 || fail "w1's records are not dropped as revoked on w2"
ok "the revoked w1 keeps running and stays lost: its records dropped as revoked"

# persisted: w2 restarts and still drops w1
kill_agent w2 TERM
start_agent w2
wait_for "w2 back, sees db1" 10 sees w2 db1 primary
settled w2 6
[ "$(state_seen w2 w1)" != ready ] || fail "restarted w2 believes w1 again"
jq -e '.revoked | length == 1' "$T/w2.state/revoked.json" >/dev/null || fail "no revoked.json on w2"
ok "the revocation is kept in state_dir/revoked.json across a restart"

# a late joiner learns it from the member list it is answered with
pw3=$(free_port)
issue w3 web
id_config w3 "$pw3" "[web]" "[tcp://127.0.0.1:$pdb]"
start_agent w3
wait_for "w3 sees db1" 10 sees w3 db1 primary
wait_for "w3 holds the revocation" 10 at_least w3 choreo_identity_revocations 1
settled w3 6
[ "$(state_seen w3 w1)" != ready ] || fail "late joiner w3 believes w1"
ok "a node that joins later learns the revocation from its member list and takes w1 for lost"

# ---- a cloned node: same key, same certificate, another address
pclone=$(free_port)
id_config db1 "$pclone" "[db]" "[tcp://127.0.0.1:$pw2]"
sed -i "s|state_dir: .*|state_dir: $T/clone.state|; s|socket: .*|socket: $T/clone.sock|" "$T/db1.yaml"
"$CHOREO_BIN" agent -c "$T/db1.yaml" >>"$T/clone.log" 2>&1 &
CLONE=$!
wait_for "the clone stops" 20 bash -c "! kill -0 $CLONE 2>/dev/null"
wait "$CLONE" 2>/dev/null || true
grep -q "name conflict: a live agent at tcp://127.0.0.1:$pdb has this node's name db1 (this agent: tcp://127.0.0.1:$pclone); this agent started later and stops" "$T/clone.log" ||
  fail "the clone did not say why it stops: $(tail -5 "$T/clone.log")"
grep -q "name conflict: tcp://127.0.0.1:$pclone claims this node's name db1" "$T/db1.log" ||
  fail "db1 did not report the clone"
wait_for "db1 counts the conflict" 10 at_least db1 choreo_name_conflicts_total 1
sees w2 db1 primary || fail "the clone changed db1's state on w2"
ok "a cloned db1 (same key and certificate) is a name conflict: the newcomer stops"
kill -0 "${AGENT_PID[db1]}" || fail "db1 died"
