#!/usr/bin/env bash
# Security (docs/SECURITY.md): with network.key_file every message is
# sealed; two clusters with different keys on one machine never see each
# other; intruders without the key (another key, no key, raw garbage) change
# nothing and are counted; a captured message sent again, even after its
# sender restarted, changes nothing; keys rotate live with no state change
# lost; bad key files are refused with FILE:LINE.
source "$(dirname "$0")/lib.sh"
: "${CHOREO_TAP:?CHOREO_TAP must point at the tap test helper}"
export HEARTBEAT=200ms LOST_AFTER=1s

# keyfile NAME KEY...: $T/NAME.key with these keys, one per line, mode 0600.
keyfile() {
  local name=$1
  shift
  printf '%s\n' "$@" > "$T/$name.key.tmp"
  chmod 600 "$T/$name.key.tmp"
  mv "$T/$name.key.tmp" "$T/$name.key"
}

# keyed_config NAME PORT GROUPS JOIN [KEYFILE]: write_config plus key_file.
keyed_config() {
  local name=$1 key=${5:-$T/$1.key}
  write_config "$1" "$2" "$3" "$4"
  sed -i "/^  lost_after:/a\\  key_file: $key" "$T/$name.yaml"
}

# dropped NODE REASON: choreo_messages_dropped_total{reason=REASON} on NODE.
dropped() {
  local v
  v=$(metric "$1" "choreo_messages_dropped_total{reason=\"$2\"}")
  echo "${v:-0}"
}

dropped_beyond() { [ "$(dropped "$1" "$2")" -ge "$3" ]; }

# view NODE: what NODE shows: every node's name and state, sorted.
view() {
  c "$1" status --json | jq -c '[[.node] + .peers | .[] | [.name, .state]] | sort'
}

all_see() { # all_see PEER STATE NODE...
  local peer=$1 state=$2
  shift 2
  for n in "$@"; do sees "$n" "$peer" "$state" || return 1; done
}

K1=$("$CHOREO_BIN" keygen) || fail "choreo keygen"
K2=$("$CHOREO_BIN" keygen) || fail "choreo keygen"
KB=$("$CHOREO_BIN" keygen) || fail "choreo keygen"

# ---- bad key files ----
pbad=$(free_port)
keyfile bad "$K1" "# second key:" "c2VjcmV0"
keyed_config bad "$pbad" "[db]" "[]"
out=$("$CHOREO_BIN" agent -c "$T/bad.yaml" 2>&1); rc=$?
[ "$rc" = 2 ] || fail "agent with a bad key file: exit $rc: $out"
echo "$out" | grep -q "network.key_file: $T/bad.key:3: not a base64-encoded 32-byte key" ||
  fail "bad key file message: $out"
echo "$out" | grep -q "c2VjcmV0" && fail "the message quotes the key file: $out"
rm -f "$T/bad.key"
out=$("$CHOREO_BIN" agent -c "$T/bad.yaml" 2>&1); rc=$?
[ "$rc" = 2 ] || fail "agent with a missing key file: exit $rc: $out"
echo "$out" | grep -q "network.key_file: $T/bad.key: cannot open" || fail "missing key file: $out"
cat > "$T/open.yaml" <<YAML
node: {name: open}
network: {listen: "tcp://0.0.0.0:$pbad", advertise: "tcp://192.0.2.7:$pbad"}
control: {socket: $T/open.sock}
YAML
out=$("$CHOREO_BIN" check -c "$T/open.yaml" 2>&1); rc=$?
[ "$rc" = 2 ] || fail "check of a public listen without a key: exit $rc"
echo "$out" | grep -q "^$T/open.yaml:2:.*set network.key_file (see choreo keygen), or network.insecure: true" ||
  fail "public listen without a key: $out"
ok "bad key files: exit 2 with FILE:LINE, key text never quoted; no public listen without a key"

# ---- two clusters on one machine, different keys ----
pa1=$(free_port); pa2=$(free_port); pb1=$(free_port); pb2=$(free_port)
ptap=$(free_port); pnk=$(free_port)
keyfile a1 "$K1"; keyfile a2 "$K1"; keyfile b1 "$KB"; keyfile b2 "$KB"
chmod 644 "$T/a1.key"
keyed_config a1 "$pa1" "[db]" "[]"
keyed_config a2 "$pa2" "[web]" "[tcp://127.0.0.1:$pa1, tcp://127.0.0.1:$ptap]"
keyed_config b1 "$pb1" "[db]" "[tcp://127.0.0.1:$pa1]"
keyed_config b2 "$pb2" "[web]" "[tcp://127.0.0.1:$pb1, tcp://127.0.0.1:$pa2]"
mkdir "$T/tap"
"$CHOREO_TAP" record "tcp://127.0.0.1:$ptap" "$T/tap" 2>>"$T/tap.log" &
tap_pid=$!
for n in a1 a2 b1 b2; do start_agent "$n"; done
grep -q "network.key_file: $T/a1.key: group or others may access it (mode 0644)" "$T/a1.log" ||
  fail "no warning about a key file others can read"
chmod 600 "$T/a1.key"
wait_for "a1 and a2 meet" 10 has_members a1 2
wait_for "b1 and b2 meet" 10 has_members b1 2
wait_for "a2 knows a1" 10 has_members a2 2
wait_for "b2 knows b1" 10 has_members b2 2
c b2 set maintenance || fail "set on b2"
wait_for "b1 sees b2 in maintenance" 5 sees b1 b2 maintenance
wait_for "a1 refuses b1's messages" 10 dropped_beyond a1 unauthenticated 3
wait_for "a2 refuses b2's messages" 10 dropped_beyond a2 unauthenticated 3
settled a1 5
for n in a1 a2 b1 b2; do has_members "$n" 2 || fail "$n sees $(members "$n") members"; done
[ "$(view a1)" = '[["a1","ready"],["a2","ready"]]' ] || fail "a1 shows $(view a1)"
[ "$(view b1)" = '[["b1","ready"],["b2","maintenance"]]' ] || fail "b1 shows $(view b1)"
ok "two clusters with different keys on one machine never see each other"

# ---- intruders: no key, raw garbage, garbage sealed with the key ----
before=$(view a1)
unauth=$(dropped a1 unauthenticated)
write_config nk "$pnk" "[db]" "[tcp://127.0.0.1:$pa1]"
start_agent nk
c nk set maintenance || fail "set on nk"
wait_for "a1 refuses the keyless agent" 10 dropped_beyond a1 unauthenticated $((unauth + 5))
kill_agent nk
unauth=$(dropped a1 unauthenticated)
nanocat --pub --connect "tcp://127.0.0.1:$pa1" --data garbage --interval 0.05 >/dev/null 2>&1 &
ncpid=$!
wait_for "a1 counts garbage as unauthenticated" 10 dropped_beyond a1 unauthenticated $((unauth + 3))
kill "$ncpid" 2>/dev/null; wait "$ncpid" 2>/dev/null
printf 'garbage' > "$T/garbage.txt"
"$CHOREO_TAP" seal "$T/a2.key" "$T/garbage.txt" "$T/garbage.sealed" || fail "tap seal"
not_json=$(dropped a1 not_json)
"$CHOREO_TAP" send "tcp://127.0.0.1:$pa1" 10 50 "$T/garbage.sealed" || fail "tap send"
wait_for "a1 counts sealed garbage as not_json" 10 dropped_beyond a1 not_json $((not_json + 1))
settled a1 3
[ "$(view a1)" = "$before" ] || fail "intruders changed a1's view: $before -> $(view a1)"
kill -0 "${AGENT_PID[a1]}" || fail "a1 died"
ok "a keyless agent and raw garbage are unauthenticated, sealed garbage is not_json; nothing changes"

# ---- replay: a2's captured messages, sent again later ----
wait_for "the tap records a2" 10 test -e "$T/tap/000001.msg"
c a2 set maintenance || fail "set maintenance on a2"
wait_for "a1 sees a2 in maintenance" 5 sees a1 a2 maintenance
n0=$(find "$T/tap" -name "*.msg" | wc -l)
wait_for "the tap records a2's maintenance heartbeats" 5 test -e "$T/tap/$(printf '%06d' $((n0 + 3))).msg"
kill -TERM "$tap_pid"; wait "$tap_pid"
c a2 set ready || fail "set ready on a2"
wait_for "a1 sees a2 ready" 5 sees a1 a2 ready
settled a1 3
replay() { # replay: send every captured message to a1 again, 5 times
  local before_replay
  before_replay=$(dropped a1 replay)
  "$CHOREO_TAP" send "tcp://127.0.0.1:$pa1" 5 100 "$T"/tap/*.msg || fail "tap send"
  wait_for "a1 counts replays" 10 dropped_beyond a1 replay $((before_replay + 10))
  settled a1 3
  sees a1 a2 ready || fail "a replay changed a2's state on a1 to $(state_seen a1 a2)"
  has_lines "$T/a1.log" "peer a2 state: ready -> maintenance" 1 ||
    fail "a1 saw a2 go to maintenance again"
}
# Counted as replays, so they were opened and decoded: the key is right,
# only their (inc, seq) is old.
replay
kill_agent a2
start_agent a2
wait_for "a1 sees a2 back" 10 sees a1 a2 ready
settled a1 3
replay
ok "captured messages sent again, also after the sender restarted, change nothing (replay counted)"

# ---- live key rotation ----
pa3=$(free_port)
keyfile a3 "$K1"
keyed_config a3 "$pa3" "[web]" "[tcp://127.0.0.1:$pa1]"
start_agent a3
wait_for "a3 joins" 10 has_members a1 3
wait_for "a2 sees a3" 10 has_members a2 3
step=0
change_seen() { # a state change on one node, seen by the two others
  local from=$1 s
  step=$((step + 1))
  s="step$step"
  c "$from" set "$s" || fail "set $s on $from"
  for n in a1 a2 a3; do
    [ "$n" = "$from" ] || wait_for "$n sees $from in $s" 5 sees "$n" "$from" "$s"
  done
}
rotate() { # rotate NODE KEYS... : new key file, SIGHUP, wait for the reload
  local n=$1 want
  shift
  want=$(($(count_lines "$T/$n.log" "reload: network.key_file: $# keys") + 1))
  keyfile "$n" "$@"
  kill -HUP "${AGENT_PID[$n]}"
  wait_for "$n reloads its $# keys" 5 has_lines "$T/$n.log" "reload: network.key_file: $# keys" "$want"
}
for n in a1 a2 a3; do rotate "$n" "$K1" "$K2"; change_seen a1; change_seen a3; done
for n in a1 a2 a3; do rotate "$n" "$K2" "$K1"; change_seen a1; change_seen a2; done
for n in a1 a2 a3; do rotate "$n" "$K2"; change_seen a2; change_seen a3; done
ok "live key rotation (add second, make first, remove the old), no state change lost"

# A bad key file on SIGHUP: logged with its line, the old keys stay.
keyfile a1 "$K2" "bogus"
kill -HUP "${AGENT_PID[a1]}"
wait_for "a1 logs the bad key file" 5 grep -q \
  "reload: network.key_file: $T/a1.key:2: not a base64-encoded 32-byte key .*; the previous keys stay" "$T/a1.log"
change_seen a1
change_seen a2
keyfile a1 "$K2"

# Only the old key now: shut out.
keyfile old "$K1"
pold=$(free_port)
keyed_config old "$pold" "[db]" "[tcp://127.0.0.1:$pa1]"
unauth=$(dropped a1 unauthenticated)
start_agent old
wait_for "a1 refuses the old key" 10 dropped_beyond a1 unauthenticated $((unauth + 3))
has_members a1 3 || fail "an agent with the retired key joined"
ok "a bad key file on SIGHUP keeps the previous keys; the retired key is refused"

# ---- stale: captured minutes ago, sent again to an agent just restarted ----
# An agent that has just restarted no longer knows which sequence numbers
# it accepted; what keeps out a message captured minutes earlier is the
# sending time sealed inside every message (docs/SECURITY.md, 60 s). The
# message below is what a2 could have sent two minutes ago, with a newer
# incarnation than a2's own so that nothing but its age stands in its way;
# the same message without a time is refused too.
kill_agent old
kill_agent a1
start_agent a1
a2_state=$(c a2 status --json | jq -r .node.state)
wait_for "a1, restarted, sees a2 again" 10 sees a1 a2 "$a2_state"
inc=$(($(date +%s) + 60))
crafted() { # crafted TIME_FIELD: a2 in maintenance, sealed with a1's key
  local now_ms
  now_ms=$(date +%s%3N)
  printf '{"v":1,"cluster":"test","from":"a2","inc":%s,"seq":1,"type":"state"%s,"rec":{"addr":"tcp://127.0.0.1:%s","ver":1,"left":false,"state":"maintenance","reason":"captured","since":%s,"groups":["web"],"data":{}},"digest":"0000000000000000","known":2}' \
    "$inc" "$1" "$pa2" "$now_ms" > "$T/crafted.json"
  "$CHOREO_TAP" seal "$T/a1.key" "$T/crafted.json" "$T/crafted.sealed" || fail "tap seal"
}
stale=$(dropped a1 stale)
crafted ",\"time\":$(($(date +%s%3N) - 120000))"
"$CHOREO_TAP" send "tcp://127.0.0.1:$pa1" 10 50 "$T/crafted.sealed" || fail "tap send"
crafted ""
"$CHOREO_TAP" send "tcp://127.0.0.1:$pa1" 10 50 "$T/crafted.sealed" || fail "tap send"
wait_for "a1 counts both as stale" 10 dropped_beyond a1 stale $((stale + 2))
settled a1 3
sees a1 a2 "$a2_state" || fail "a stale message changed a2's state on a1 to $(state_seen a1 a2)"
# The control: the same message sent now is taken, so only its age or its
# missing time kept it out above.
crafted ",\"time\":$(date +%s%3N)"
"$CHOREO_TAP" send "tcp://127.0.0.1:$pa1" 10 50 "$T/crafted.sealed" || fail "tap send"
# a2 refutes it within a heartbeat (docs/PROTOCOL.md "A node owns its
# record"), so look for the change in the log rather than in the view.
wait_for "a1 takes the fresh message" 10 grep -q "peer a2 state: .* -> maintenance" "$T/a1.log"
ok "a message sent two minutes ago, or without a time, is stale after a restart; the same sent now is taken"
