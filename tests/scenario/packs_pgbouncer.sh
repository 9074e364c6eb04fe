#!/usr/bin/env bash
# The pgbouncer-pause pack with Debian's PgBouncer and PostgreSQL, our own
# instances on loopback ports in this test's directory: while db1 is in
# maintenance PgBouncer holds the shop database paused, so a client's query
# waits in the pooler and completes after RESUME instead of failing. An
# admin console that refuses the login is a failure, logged and counted,
# and PgBouncer keeps serving.
source "$(dirname "$0")/lib.sh"
source "$CHOREO_SRC/examples/shop-real/servers.sh"

missing=$(real_missing)
command -v pgbouncer >/dev/null || missing="$missing pgbouncer"
if [ -n "${missing// /}" ]; then
  echo "SKIP: not installed: $missing (scripts/deps.sh installs them)"
  exit 77
fi
# Debian's package may start its own service: not ours, and not wanted.
real_quiet_debian_service pgbouncer
trap 'for n in "${!AGENT_PID[@]}"; do kill_agent "$n" TERM; done; real_stop; cleanup' EXIT

chmod 0711 "$T"
pg=$(real_free_port); pgb=$(real_free_port)
real_start_postgres "$T/pg" "$pg" || fail "starting PostgreSQL"
real_start_pgbouncer "$T/pgbouncer" "$pgb" "$pg" || fail "starting PgBouncer: $(cat "$T/pgbouncer/pgbouncer.log" "$T/pgbouncer/pgbouncer.err")"
through_pool() { psql -X -q -At -h 127.0.0.1 -p "$pgb" -U postgres -d shop -c "$1"; }
[ "$(through_pool "SELECT count(*) FROM products")" = 3 ] || fail "a query through PgBouncer"
console() { psql -X -q -At -h 127.0.0.1 -p "$pgb" -U postgres -d pgbouncer -c "$1"; }
# SHOW DATABASES: field 12 is "paused".
paused() { [ "$(console "SHOW DATABASES" | awk -F'|' '$1 == "shop" { print $12 }')" = "$1" ]; }
paused 0 || fail "shop paused from the start"

pdb=$(free_port); pp1=$(free_port); pp2=$(free_port)
pack() { # pack USER: the pack's include for the console user USER
  echo "include:
  - file: $CHOREO_SRC/behaviours/pgbouncer-pause.yaml
    vars: {depends_on: db, host: 127.0.0.1, port: \"$pgb\", user: $1, database: shop}"
}
write_config db1 "$pdb" "[db]" "[]"
write_config pool1 "$pp1" "[pool]" "[tcp://127.0.0.1:$pdb]" "$(pack postgres)"
write_config pool2 "$pp2" "[pool]" "[tcp://127.0.0.1:$pdb]" "$(pack intruder)"
for n in pool1 pool2; do
  "$CHOREO_BIN" check -c "$T/$n.yaml" >"$T/check.out" 2>&1 || fail "choreo check $n: $(cat "$T/check.out")"
done
start_agent db1
start_agent pool2
wait_for "pool2 sees db1" 10 sees pool2 db1 ready
ok "PostgreSQL, PgBouncer and the agents run; the pack checks"

# pool2's console user is refused: the pause fails (tried twice), is
# counted, and PgBouncer goes on serving.
failures_are() { [ "$(metric "$1" choreo_script_failures_total)" = "$2" ]; }
c db1 set maintenance --reason "schema 42" || fail "set maintenance"
wait_for "pool2 counts the refused login" 10 failures_are pool2 1
grep -q "pgbouncer-pause: PgBouncer's admin console at 127.0.0.1:$pgb refused intruder (is intruder in admin_users" "$T/pool2.log" ||
  fail "pool2's log: $(grep pgbouncer "$T/pool2.log")"
grep -q "pgbouncer-pause: psql: .*authentication failed" "$T/pool2.log" || fail "pool2's log has no reason"
paused 0 || fail "paused by a refused user"
[ "$(through_pool "SELECT count(*) FROM products")" = 3 ] || fail "PgBouncer stopped serving"
ok "a console that refuses the login: the failure is logged with PgBouncer's reason and counted; PgBouncer keeps serving"
kill_agent pool2 TERM
c db1 set ready || fail "set ready"

start_agent pool1
wait_for "pool1 sees db1" 10 sees pool1 db1 ready
c db1 set maintenance --reason "schema 43" || fail "set maintenance"
wait_for "PgBouncer holds shop paused" 10 paused 1
logged() { grep -q -- "$2" "$1"; }
wait_for "pool1 logs the pause" 10 logged "$T/pool1.log" "pgbouncer-pause: PAUSE shop on 127.0.0.1:$pgb (run"
# A client of the shop now waits in the pooler.
through_pool "SELECT count(*) FROM products" >"$T/client.out" 2>&1 &
client=$!
waiting() { [ "$(console "SHOW POOLS" | awk -F'|' '$1 == "shop" { print $4 }')" -ge 1 ]; }
wait_for "the client waiting in PgBouncer" 10 waiting
kill -0 "$client" 2>/dev/null || fail "the client did not wait: $(cat "$T/client.out")"
c db1 set ready || fail "set ready"
wait_for "PgBouncer resumes shop" 10 paused 0
wait "$client" || fail "the client failed: $(cat "$T/client.out")"
[ "$(cat "$T/client.out")" = 3 ] || fail "the client's answer: $(cat "$T/client.out")"
wait_for "pool1 logs the resume" 10 logged "$T/pool1.log" "pgbouncer-pause: RESUME shop on 127.0.0.1:$pgb (revert: db1 is ready)"
failures_are pool1 0 || fail "pool1 counted $(metric pool1 choreo_script_failures_total) failures"
ok "db1 in maintenance: PgBouncer pauses shop, a client's query waits in the pooler and gets its answer after RESUME"
