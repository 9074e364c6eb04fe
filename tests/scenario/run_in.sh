#!/usr/bin/env bash
# choreo run-in checks COMMAND before it announces anything: a command that
# is missing or not executable exits 127 with a message naming it, and no
# peer ever sees the state (a behaviour on {any: maintenance} records
# nothing); a real command still runs in the state and reverts.
source "$(dirname "$0")/lib.sh"

cat > "$T/record.sh" <<'SH'
#!/bin/sh
echo "$1 $CHOREO_PEER $CHOREO_PEER_STATE" >> "$RECORD"
SH
chmod +x "$T/record.sh"
export RECORD="$T/web1.record"

p1=$(free_port); p2=$(free_port)
write_config db1 "$p1" "[db]" "[]"
write_config web1 "$p2" "[web]" "[tcp://127.0.0.1:$p1]" "behaviours:
  - name: holding
    peers: {group: db}
    when: {any: maintenance}
    run: [$T/record.sh, run]
    revert: [$T/record.sh, revert]"
start_agent db1
start_agent web1
wait_for "web1 sees db1" 10 sees web1 db1 ready

expect_127() { # expect_127 COMMAND-FOR-RUN-IN...
  local rc
  c db1 run-in maintenance --reason "should not show" -- "$@" >"$T/out" 2>&1; rc=$?
  [ "$rc" = 127 ] || fail "run-in -- $* exited $rc, expected 127: $(cat "$T/out")"
  grep -q "choreo run-in: $1: " "$T/out" || fail "run-in -- $*: message does not name the command: $(cat "$T/out")"
  grep -q "state was not changed" "$T/out" || fail "run-in -- $*: $(cat "$T/out")"
}
: > "$T/notexec"
chmod 0644 "$T/notexec"
expect_127 /nonexistent/command arg
expect_127 no-such-command-anywhere-42
expect_127 "$T/notexec"
expect_127 "$T"
grep -q "no such file" "$T/out" && fail "a directory is not 'no such file': $(cat "$T/out")"
ok "run-in with a missing, unfindable, non-executable or directory command exits 127 naming it"

# A real run after the failures: if any failure had announced maintenance,
# web1 would have recorded its run and revert before these.
c db1 run-in maintenance -- true || fail "run-in -- true"
wait_for "web1 runs and reverts holding once" 10 grep -q "^revert db1" "$RECORD"
[ "$(head -1 "$RECORD")" = "run db1 maintenance" ] || fail "first record: $(cat "$RECORD")"
[ "$(grep -c . "$RECORD")" = 2 ] || fail "records: $(cat "$RECORD")"
c db1 status --json | jq -e '.node.state == "ready" and .node.reason == ""' >/dev/null ||
  fail "db1 after run-in: $(c db1 status --json)"
ok "no state change from the failed run-ins; a real command still runs and reverts"

# The event log of db1 says the same: maintenance was entered once.
[ "$(grep -c "should not show" "$T/db1.log")" = 0 ] || fail "db1 logged the refused reason"
ok "the refused run-ins never reached the agent"
