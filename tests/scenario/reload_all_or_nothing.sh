#!/usr/bin/env bash
# Reloads are all or nothing (docs/OPERATIONS.md "Reload"): a new key file
# together with an invalid configuration is refused whole, so the node
# keeps sealing with its old key and its peers never see it lost; choreo
# reload prints each error with FILE:LINE:COL and exits 1. A valid reload
# exits 0 with a summary and is in effect at once. choreo_reloads_total
# counts both outcomes; SIGHUP does the same as choreo reload.
source "$(dirname "$0")/lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s

keyfile() { # keyfile NAME KEY...: $T/NAME.key, mode 0600
  local name=$1
  shift
  printf '%s\n' "$@" > "$T/$name.key.tmp"
  chmod 600 "$T/$name.key.tmp"
  mv "$T/$name.key.tmp" "$T/$name.key"
}

keyed_config() { # keyed_config NAME PORT GROUPS JOIN [EXTRA]
  write_config "$@"
  sed -i "/^  lost_after:/a\\  key_file: $T/$1.key" "$T/$1.yaml"
}

reloads() { # reloads NODE OUTCOME
  local v
  v=$(metric "$1" "choreo_reloads_total{outcome=\"$2\"}")
  echo "${v:-0}"
}

# Every check of db1 by web1 over N heartbeats: never lost, never
# anything but STATE.
never_lost() { # never_lost VIEWER PEER STATE SECONDS
  local end=$(($(date +%s%N) + $4 * 1000000000)) s
  while [ "$(date +%s%N)" -lt "$end" ]; do
    s=$(state_seen "$1" "$2")
    [ "$s" = "$3" ] || fail "$1 sees $2 as '$s', not $3"
    sleep 0.05
  done
}

K1=$("$CHOREO_BIN" keygen) || fail "keygen"
K2=$("$CHOREO_BIN" keygen) || fail "keygen"
keyfile db1 "$K1"; keyfile web1 "$K1"
pdb=$(free_port); pw=$(free_port)
keyed_config db1 "$pdb" "[db]" "[]"
keyed_config web1 "$pw" "[web]" "[tcp://127.0.0.1:$pdb]"
start_agent db1
start_agent web1
wait_for "web1 sees db1" 10 sees web1 db1 ready
wait_for "db1 sees web1" 10 sees db1 web1 ready
grep -q "^  reload *reload the configuration" <("$CHOREO_BIN" --help) ||
  fail "choreo --help does not list reload"
"$CHOREO_BIN" reload --help | grep -q "all or nothing" || fail "choreo reload --help"

# ---- a new key and an invalid file: refused whole ----
applied0=$(reloads db1 applied); refused0=$(reloads db1 refused)
cp "$T/db1.yaml" "$T/db1.good"
keyfile db1 "$K2"
printf 'node:\n  name: db1\n  bogus: 1\n' > "$T/db1.yaml"
out=$(c db1 reload 2>&1); rc=$?
[ "$rc" = 1 ] || fail "choreo reload of an invalid file: exit $rc: $out"
echo "$out" | grep -q "^$T/db1.yaml:3:3: " || fail "no FILE:LINE:COL error: $out"
echo "$out" | grep -q "refused" || fail "the outcome is not said: $out"
[ "$(reloads db1 refused)" = $((refused0 + 1)) ] || fail "refused reloads not counted"
[ "$(reloads db1 applied)" = "$applied0" ] || fail "a refused reload counted as applied"
# Peers keep hearing db1 (under the old key) for several heartbeats, and
# db1 keeps hearing them.
never_lost web1 db1 ready 2
never_lost db1 web1 ready 1
c db1 set maintenance || fail "set on db1"
wait_for "web1 sees db1's change: the old key still seals" 5 sees web1 db1 maintenance
grep -q "configuration refused; the previous one stays" "$T/db1.log" || fail "not logged"
ok "a new key with an invalid file: choreo reload exits 1 with FILE:LINE:COL, the old key stays, peers never see the node lost"

# SIGHUP: the same outcome, counted the same.
kill -HUP "${AGENT_PID[db1]}"
wait_for "the SIGHUP reload is refused" 5 test "$(reloads db1 refused)" = $((refused0 + 2))
never_lost web1 db1 maintenance 1
ok "SIGHUP refuses the same reload whole and counts it"

# ---- a valid reload: applied, in effect at once ----
cp "$T/db1.good" "$T/db1.yaml"
keyfile db1 "$K1" "$K2" # both open; K1 still seals, as web1 has only K1
cat >> "$T/db1.yaml" <<YAML
behaviours:
  - name: mark
    peers: {group: web}
    when: {any: maintenance}
    run: [sh, -c, 'touch $T/mark.ran']
YAML
sed -i "s|^  listen: tcp://127.0.0.1:$pdb|  listen: tcp://127.0.0.1:$(free_port)|" "$T/db1.yaml"
out=$(c db1 reload 2>&1); rc=$?
[ "$rc" = 0 ] || fail "choreo reload of a valid file: exit $rc: $out"
echo "$out" | grep -q "^reload applied: 1 behaviour, 0 checks; changed but kept until a restart: network.listen, network.advertise$" ||
  fail "summary: $out"
[ "$(reloads db1 applied)" = $((applied0 + 1)) ] || fail "applied reload not counted"
c web1 set maintenance || fail "set on web1"
wait_for "db1 runs the new behaviour" 5 test -e "$T/mark.ran"
grep -q "reload: network.key_file: 2 keys" "$T/db1.log" || fail "the new key file was not taken"
never_lost web1 db1 maintenance 1
metrics=$(c db1 metrics)
echo "$metrics" | grep -q '^# TYPE choreo_reloads_total counter$' || fail "choreo_reloads_total is not typed a counter"
ok "a valid reload: exit 0 with a summary, the behaviour in effect, the keys taken, the counter moved"
