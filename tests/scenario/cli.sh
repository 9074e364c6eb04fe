#!/usr/bin/env bash
# The command line as a user meets it: exit statuses, usage errors, help,
# and each client command against real agents.
source "$(dirname "$0")/lib.sh"

expect_exit() { # expect_exit CODE COMMAND...
  local want=$1 rc
  shift
  "$@" >"$T/out" 2>&1; rc=$?
  [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want: $(cat "$T/out")"
}

# ---- without an agent ----
expect_exit 3 "$CHOREO_BIN" status --socket "$T/nobody.sock"
grep -q "no agent" "$T/out" || fail "no-agent message: $(cat "$T/out")"
CHOREO_SOCKET="$T/nobody.sock" expect_exit 3 "$CHOREO_BIN" set ready
expect_exit 2 "$CHOREO_BIN" frobnicate
expect_exit 2 "$CHOREO_BIN"
expect_exit 2 "$CHOREO_BIN" status --bogus
expect_exit 2 "$CHOREO_BIN" set "Bad State!"
expect_exit 2 "$CHOREO_BIN" set lost
expect_exit 2 "$CHOREO_BIN" set ready --data "NOT VALID=x"
expect_exit 2 "$CHOREO_BIN" set ready --reason
expect_exit 2 "$CHOREO_BIN" wait --node db1 --any --all ready
expect_exit 2 "$CHOREO_BIN" wait --node db1 --any ready --timeout 5 
expect_exit 2 "$CHOREO_BIN" run-in maintenance
expect_exit 2 "$CHOREO_BIN" check
ok "usage errors exit 2, no agent exits 3"

for cmd in agent check set status peers watch wait run-in keygen leave metrics version; do
  expect_exit 0 "$CHOREO_BIN" "$cmd" --help
  grep -q "^Usage: choreo $cmd" "$T/out" || fail "$cmd --help: $(head -3 "$T/out")"
done
expect_exit 0 "$CHOREO_BIN" --help
ok "--help for every command"

expect_exit 0 "$CHOREO_BIN" version
for lib in choreo libuv nanomsg libyaml jansson libsodium; do
  grep -q "^$lib [0-9]" "$T/out" || fail "version lacks $lib: $(cat "$T/out")"
done
key=$("$CHOREO_BIN" keygen)
[ "$(printf '%s' "$key" | base64 -d | wc -c)" = 32 ] || fail "keygen: $key"
[ "$key" != "$("$CHOREO_BIN" keygen)" ] || fail "keygen repeats itself"
ok "version names every library; keygen prints 32 random bytes in base64"

# ---- against agents ----
p1=$(free_port); p2=$(free_port)
write_config db1 "$p1" "[db]" "[]"
write_config web1 "$p2" "[web, edge]" "[tcp://127.0.0.1:$p1]"
start_agent db1
start_agent web1
wait_for "web1 sees db1" 10 sees web1 db1 ready

# status: human and JSON shapes
c web1 status > "$T/status.txt" || fail "status"
grep -qE "^NAME +GROUPS +STATE +SINCE +LAST SEEN +REASON" "$T/status.txt" || fail "status header: $(cat "$T/status.txt")"
grep -qE "^web1\* +web,edge +ready" "$T/status.txt" || fail "status self row: $(cat "$T/status.txt")"
c web1 status --json | jq -e '(keys == ["declared","node","peers"]) and (.node | keys) == ["addr","data","groups","last_seen_ms","name","reason","since","state"] and .node.last_seen_ms == 0 and (.peers[0] | .name == "db1" and .groups == ["db"])' >/dev/null ||
  fail "status --json shape: $(c web1 status --json)"
c web1 peers --json | jq -e 'length == 1 and .[0].name == "db1"' >/dev/null || fail "peers --json"
c db1 peers --group edge --json | jq -e 'length == 1 and .[0].name == "web1"' >/dev/null || fail "peers --group"
c db1 peers --group nope --json | jq -e 'length == 0' >/dev/null || fail "peers --group nope"
ok "status and peers, as a table and as JSON"

# set with data merge and removal
c db1 set ready --data a=1 --data b=2 || fail "set data"
c db1 set ready --data a= || fail "remove data"
wait_for "web1 sees db1's data" 10 sh -c "\"$CHOREO_BIN\" status --json --socket '$T/web1.sock' | jq -e '.peers[0].data == {\"b\":\"2\"}'"
ok "set --data merges and KEY= removes"

# watch --json: lines parse and arrive in order
# Started directly (not through the c function) so $! is choreo itself.
"$CHOREO_BIN" watch --json --socket "$T/web1.sock" > "$T/watch.out" 2>&1 &
wpid=$!
poke() { # change db1's data until the watcher has seen something
  c db1 set ready --data "poke=$RANDOM" >/dev/null
  grep -q '"event":"data"' "$T/watch.out"
}
wait_for "watch receives events" 10 poke
for s in one two three; do c db1 set "$s" || fail "set $s"; done
wait_for "three watch lines" 10 sh -c "[ \$(grep -c '\"event\":\"state\"' '$T/watch.out') -ge 3 ]"
kill -INT "$wpid"; wait "$wpid"; rc=$?
[ "$rc" = 0 ] || fail "watch exit on SIGINT: $rc"
jq -s -e '[.[] | select(.event == "state" and .peer == "db1") | .state] | .[-3:] == ["one","two","three"]' "$T/watch.out" >/dev/null ||
  fail "watch order: $(cat "$T/watch.out")"
ok "watch --json streams events in order and stops on SIGINT"

# wait
c db1 set ready || fail "set ready"
expect_exit 1 c web1 wait --node db1 --any maintenance --timeout 300ms
"$CHOREO_BIN" wait --group db --all maintenance --timeout 10s --socket "$T/web1.sock" > "$T/wait.out" 2>&1 &
wpid=$!
c db1 set maintenance || fail "set maintenance"
wait "$wpid" || fail "wait did not return 0 when db1 went into maintenance"
ok "wait times out with 1 and returns 0 as soon as the condition holds"

# run-in restores the previous state, whatever the command does
c db1 set ready --reason "normal" || fail "set"
expect_exit 3 c db1 run-in maintenance --reason migrate -- sh -c 'exit 3'
sees db1 db1 ready || fail "run-in did not restore after exit 3"
expect_exit 0 c db1 run-in maintenance -- sh -c "\"$CHOREO_BIN\" status --json --socket '$T/db1.sock' | jq -e '.node.state == \"maintenance\"'"
sees db1 db1 ready || fail "run-in did not restore after exit 0"
"$CHOREO_BIN" run-in draining --socket "$T/db1.sock" -- sleep 30 &
rpid=$!
wait_for "db1 draining" 10 sees db1 db1 draining
kill -TERM "$rpid"; wait "$rpid"; rc=$?
[ "$rc" = 143 ] || fail "run-in after SIGTERM exited $rc, expected 143"
sees db1 db1 ready || fail "run-in did not restore after SIGTERM"
c db1 status --json | jq -e '.node.reason == "normal"' >/dev/null || fail "run-in did not restore the reason"
ok "run-in restores state and reason after exit 0, exit 3 and SIGTERM"

# metrics parse as Prometheus text
c db1 metrics > "$T/metrics.txt" || fail "metrics"
/usr/bin/python3 - "$T/metrics.txt" <<'PY' || fail "metrics do not parse: $(head "$T/metrics.txt")"
import sys
from prometheus_client.parser import text_string_to_metric_families
names = {f.name for f in text_string_to_metric_families(open(sys.argv[1]).read())}
for want in ("choreo_messages_received", "choreo_messages_dropped", "choreo_script_runs", "choreo_peers"):
    assert want in names, (want, names)
PY
ok "metrics parse as Prometheus text"

# leave: peers see left, not lost
c db1 leave || fail "leave"
wait_for "web1 sees db1 left" 10 sees web1 db1 left
wait "${AGENT_PID[db1]}"; rc=$?
unset "AGENT_PID[db1]"
[ "$rc" = 0 ] || fail "agent exit after leave: $rc"
ok "leave: peers show left, the agent exits 0"

# A control socket that answers garbage, or never answers: a clear error
# and exit 1 within the client's timeout, never a hang.
/usr/bin/python3 - "$T/liar.sock" "$T/mute.sock" <<'PY' &
import socket, sys, threading, time
def serve(path, answer):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path); s.listen(8)
    while True:
        conn, _ = s.accept()
        conn.recv(65536)
        if answer is not None:
            conn.sendall(answer)
        threading.Thread(target=lambda c=conn: (time.sleep(60), c.close()), daemon=True).start()
threading.Thread(target=serve, args=(sys.argv[1], b"this is not json\n"), daemon=True).start()
threading.Thread(target=serve, args=(sys.argv[2], None), daemon=True).start()
time.sleep(60)
PY
fake=$!
wait_for "fake sockets" 5 test -S "$T/mute.sock"
expect_exit 1 "$CHOREO_BIN" status --socket "$T/liar.sock"
grep -q "malformed reply" "$T/out" || fail "garbage reply message: $(cat "$T/out")"
start=$(date +%s)
expect_exit 1 "$CHOREO_BIN" status --socket "$T/mute.sock"
grep -q "timed out" "$T/out" || fail "hung socket message: $(cat "$T/out")"
[ $(($(date +%s) - start)) -le 8 ] || fail "a hung agent held the CLI for more than 8 s"
kill "$fake" 2>/dev/null
ok "an agent answering garbage or hanging: clear error, exit 1, bounded time"

# Colour only on a terminal, and never with NO_COLOR.
p3=$(free_port)
write_config n3 "$p3" "[web]" "[]"
start_agent n3
script -qec "\"$CHOREO_BIN\" status --socket '$T/n3.sock'" /dev/null > "$T/tty.out"
grep -q $'\033\[32m' "$T/tty.out" || fail "no colour on a terminal: $(cat -v "$T/tty.out")"
NO_COLOR=1 script -qec "\"$CHOREO_BIN\" status --socket '$T/n3.sock'" /dev/null > "$T/tty.out"
! grep -q $'\033\[' "$T/tty.out" || fail "colour despite NO_COLOR"
c n3 status | grep -q $'\033\[' && fail "colour into a pipe"
ok "colour on a terminal only, and not with NO_COLOR"
