#!/usr/bin/env bash
# A full or read-only state_dir doesn't keep an agent down
# (docs/RELIABILITY.md "Restarts"): db1's state_dir is a small tmpfs; when
# it is full, and when it is read-only, db1 restarts, says loudly that it
# can't save, works from its last saved state, `choreo set` exits 1 with a
# clear message and peers keep seeing the saved state. A state_dir others
# may write to is refused at start.
source "$(dirname "$0")/lib.sh"

skip() {
  echo "SKIP: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root to mount a tmpfs"

pdb=$(free_port)
pw=$(free_port)
write_config db1 "$pdb" "[db]" "[]"
write_config web1 "$pw" "[web]" "[tcp://127.0.0.1:$pdb]"
mkdir -m 0700 "$T/db1.state"
mount -t tmpfs -o size=256k,mode=0700 tmpfs "$T/db1.state" ||
  skip "cannot mount a tmpfs"
trap 'umount -l "$T/db1.state" 2>/dev/null; cleanup' EXIT

start_agent db1
start_agent web1
c db1 set maintenance --reason saved || fail "set maintenance"
wait_for "web1 sees db1 in maintenance" 10 sees web1 db1 maintenance

# expect_refused_set WHAT: `set ready` fails with exit 1 and says why; the
# state stays the saved one on db1 and as web1 sees it.
expect_refused_set() {
  local out rv=0
  out=$(c db1 set ready 2>&1) || rv=$?
  [ "$rv" = 1 ] || fail "$1: set exited $rv, expected 1: $out"
  grep -q "state_dir can't be written" <<<"$out" ||
    fail "$1: set said no clear reason: $out"
  sees db1 db1 maintenance || fail "$1: db1 shows $(state_seen db1 db1)"
  settled web1 5
  sees web1 db1 maintenance || fail "$1: web1 sees db1 $(state_seen web1 db1)"
  ok "$1: set exits 1 with a clear message, peers keep the saved state"
}

# restart_db1 WHAT: kill -9 and start again; it starts and says it can't
# save; web1 sees it back in its saved state.
restart_db1() {
  local errors
  errors=$(count_lines "$T/db1.log" "cannot save the state")
  kill_agent db1 KILL
  start_agent db1
  wait_for "db1 said it can't save" 10 has_lines "$T/db1.log" \
    "cannot save the state" $((errors + 1))
  wait_for "web1 sees db1 in maintenance" 10 sees web1 db1 maintenance
  ok "$1: db1 starts, says it can't save, and runs on its saved state"
}

dd if=/dev/zero of="$T/db1.state/filler" bs=4k 2>/dev/null
expect_refused_set "full state_dir"
restart_db1 "full state_dir"
expect_refused_set "full state_dir after a restart"
rm -f "$T/db1.state/filler"
c db1 set ready || fail "set after room was made"
wait_for "web1 sees db1 ready" 10 sees web1 db1 ready
c db1 set maintenance --reason saved || fail "set maintenance"
wait_for "web1 sees db1 in maintenance" 10 sees web1 db1 maintenance
ok "with room again, set works"

mount -o remount,ro "$T/db1.state" || fail "remount read-only"
expect_refused_set "read-only state_dir"
restart_db1 "read-only state_dir"
expect_refused_set "read-only state_dir after a restart"
mount -o remount,rw "$T/db1.state" || fail "remount read-write"
c db1 set ready || fail "set after remounting read-write"
wait_for "web1 sees db1 ready" 10 sees web1 db1 ready
ok "read-write again, set works"

# A state_dir others may write to: refused at start, exit 1.
kill_agent web1 KILL
chmod 0777 "$T/web1.state"
rv=0
"$CHOREO_BIN" agent -c "$T/web1.yaml" >"$T/web1.refused" 2>&1 || rv=$?
[ "$rv" = 1 ] || fail "agent with a world-writable state_dir exited $rv"
grep -q "state_dir refused: $T/web1.state: group or others may write to it" \
  "$T/web1.refused" || fail "no clear refusal: $(cat "$T/web1.refused")"
ok "a state_dir others may write to is refused at start with exit 1"
