#!/usr/bin/env bash
# Bad input from every side: configuration files, a second agent, a busy
# address, unreachable join addresses, and garbage or hostile messages on
# the inbox. Each gets a clear message and the right exit status; nothing
# crashes and nothing changes state.
source "$(dirname "$0")/lib.sh"

# ---- configuration ----
check_fails() { # check_fails FILE PATTERN
  local out rc
  out=$("$CHOREO_BIN" check -c "$1" 2>&1); rc=$?
  [ "$rc" = 2 ] || fail "check $1: exit $rc, expected 2: $out"
  echo "$out" | grep -qE -- "$2" || fail "check $1: no line matching /$2/ in: $out"
}

cat > "$T/unknown.yaml" <<'YAML'
node:
  name: n1
  colour: blue
YAML
check_fails "$T/unknown.yaml" "^$T/unknown.yaml:3:3: .*colour"

cat > "$T/syntax.yaml" <<'YAML'
node:
  name: [n1
network: {}
YAML
check_fails "$T/syntax.yaml" "^$T/syntax.yaml:[0-9]+:[0-9]+: "

cat > "$T/types.yaml" <<'YAML'
node:
  name: n1
network:
  heartbeat: soon
  join: tcp://127.0.0.1:1
YAML
check_fails "$T/types.yaml" "^$T/types.yaml:4:14: .*heartbeat"
check_fails "$T/types.yaml" "^$T/types.yaml:5:9: .*join"

cat > "$T/dup.yaml" <<'YAML'
node:
  name: n1
  name: n2
YAML
check_fails "$T/dup.yaml" "^$T/dup.yaml:3:3: .*duplicate"

cat > "$T/script.yaml" <<YAML
node: {name: n1}
behaviours:
  - name: b
    when: {any: maintenance}
    run: [$T/no-such-script]
YAML
check_fails "$T/script.yaml" "^$T/script.yaml:5:11: .*no-such-script"

out=$("$CHOREO_BIN" agent -c "$T/unknown.yaml" 2>&1); rc=$?
[ "$rc" = 2 ] || fail "agent with a bad file: exit $rc"
echo "$out" | grep -q "^$T/unknown.yaml:3:3: " || fail "agent with a bad file: $out"
ok "bad configuration files: FILE:LINE:COL messages and exit 2, from check and agent"

# ---- a second agent, a busy address, a missing socket directory ----
p1=$(free_port); p2=$(free_port)
write_config n1 "$p1" "[db]" "[]"
sed -i "s|socket: $T/n1.sock|socket: $T/sub/dir/n1.sock|" "$T/n1.yaml"
"$CHOREO_BIN" agent -c "$T/n1.yaml" >>"$T/n1.log" 2>&1 &
AGENT_PID[n1]=$!
ln -s "$T/sub/dir/n1.sock" "$T/n1.sock"
wait_for "n1 answers in a directory it created" 10 c n1 status
ok "the agent creates a missing socket directory"

write_config n1b "$p2" "[db]" "[]"
sed -i "s|socket: $T/n1b.sock|socket: $T/sub/dir/n1.sock|" "$T/n1b.yaml"
out=$("$CHOREO_BIN" agent -c "$T/n1b.yaml" 2>&1); rc=$?
[ "$rc" = 1 ] || fail "second agent on a live socket: exit $rc"
echo "$out" | grep -q "another agent" || fail "second agent: $out"
c n1 status >/dev/null || fail "the first agent stopped answering"
ok "a second agent doesn't steal a live agent's socket (exit 1)"

write_config n2 "$p1" "[db]" "[]"
out=$("$CHOREO_BIN" agent -c "$T/n2.yaml" 2>&1); rc=$?
[ "$rc" = 1 ] || fail "agent on a busy address: exit $rc"
echo "$out" | grep -q "network.listen: tcp://127.0.0.1:$p1" || fail "busy address: $out"
[ ! -e "$T/n2.sock" ] || fail "a failed start left $T/n2.sock behind"
ok "a busy listen address: clear message, exit 1, no stale socket"

kill_agent n1 KILL
[ -S "$T/sub/dir/n1.sock" ] || fail "kill -9 should leave the socket file"
start_agent n1
ok "a stale socket file from a crashed agent doesn't stop the next start"

# ---- unreachable join address ----
p3=$(free_port); dead=$(free_port)
write_config n3 "$p3" "[web]" "[tcp://127.0.0.1:$dead, tcp://127.0.0.9:$dead]"
start_agent n3
c n3 set ready || fail "n3 doesn't take commands while its join addresses are dead"
ok "unreachable join addresses: the agent runs and keeps trying"

# ---- hostile messages ----
before_state=$(c n1 status --json | jq -c '[.node.state, (.peers | length)]')
send() { # send DATA: publish DATA to n1's inbox until n1 has counted it
  nanocat --pub --connect "tcp://127.0.0.1:$p1" --data "$1" --interval 0.05 >/dev/null 2>&1 &
  local pid=$!
  wait_for "n1 counts $2" 10 counted "$2" "$3"
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
}
counted() { # counted LABELS MIN
  local v
  v=$(c n1 metrics | awk -v l="choreo_messages_dropped_total{reason=\"$1\"}" '$1 == l { print $2 }')
  [ -n "$v" ] && [ "$v" -ge "$2" ]
}
send "garbage" not_json 3
send '{"v":1,"type":"state"}' bad_field 3
send '{"v":9,"cluster":"test","from":"x","inc":1,"seq":1,"type":"state"}' bad_version 3
rec='{"addr":"tcp://127.0.0.1:1","ver":1,"left":false,"state":"maintenance","reason":"","since":1,"groups":["web"],"data":{}}'
send '{"v":1,"cluster":"other","from":"intruder","inc":1,"seq":1,"type":"state","digest":"0000000000000000","known":1,"rec":'"$rec"'}' other_cluster 3
send '{"v":1,"cluster":"test","from":"n1","inc":1,"seq":1,"type":"state","digest":"0000000000000000","known":1,"rec":'"$rec"'}' own_name 3
after_state=$(c n1 status --json | jq -c '[.node.state, (.peers | length)]')
[ "$before_state" = "$after_state" ] || fail "hostile messages changed state: $before_state -> $after_state"
kill -0 "${AGENT_PID[n1]}" || fail "n1 died"
ok "garbage, malformed, foreign and impersonating messages are dropped, counted, and change nothing"

# An incarnation from the future, and a member list naming hundreds of
# bogus members (all on closed loopback ports): bounded and counted.
send '{"v":1,"cluster":"test","from":"timetraveller","inc":99999999999,"seq":1,"type":"state","digest":"0000000000000000","known":1,"rec":'"$rec"'}' future 3
bogus() { # bogus FIRST COUNT: a members message of COUNT made-up nodes
  jq -cn --argjson first "$1" --argjson n "$2" '{v:1, cluster:"test", from:"liar", inc:1, seq:($first + 1), type:"members",
    members:[range($first; $first + $n) | {name:"bogus\(.)", addr:"tcp://127.0.0.1:\(1 + . % 1000)", inc:1, ver:1, left:false}]}'
}
accepted_more() { v=$(metric n1 choreo_messages_accepted_total); [ "${v:-0}" -gt "$1" ]; }
for first in 0 200 400; do
  before=$(metric n1 choreo_messages_accepted_total)
  nanocat --pub --connect "tcp://127.0.0.1:$p1" --data "$(bogus "$first" 200)" --interval 0.05 >/dev/null 2>&1 &
  pid=$!
  wait_for "n1 takes the list from $first" 10 accepted_more "${before:-0}"
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
done
capped() { v=$(metric n1 choreo_members_capped_total); [ -n "$v" ] && [ "$v" -gt 0 ]; }
wait_for "n1 caps the bogus members" 10 capped
c n1 status --json | jq -e '.peers | length == 0' >/dev/null || fail "bogus members show in status"
kill -0 "${AGENT_PID[n1]}" || fail "n1 died"
ok "an incarnation from the future and a list of 600 bogus members: dropped or capped, counted"
