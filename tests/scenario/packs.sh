#!/usr/bin/env bash
# The behaviour packs under behaviours/: each is accepted by `choreo check`
# with its vars; a pack included twice and a pack missing a var are errors
# naming the lines; the scripts are shellcheck-clean POSIX sh and refuse
# bad arguments; the systemd packs drive a (fake) systemctl from a live
# agent; the flag-file pack creates and removes its flag from a live agent,
# and a missing flag directory is a failure that is logged and counted; a
# missing HAProxy socket is a failure that is logged and counted and breaks
# nothing else; the migration helper runs psql in maintenance.
# tests/scenario/real_story.sh runs the nginx, HAProxy and PostgreSQL packs
# against the real servers, packs_pgbouncer.sh and packs_apache.sh the
# PgBouncer and Apache ones.
source "$(dirname "$0")/lib.sh"
B=$CHOREO_SRC/behaviours

check() { "$CHOREO_BIN" check -c "$1" >"$T/check.out" 2>&1; }

# ---- every pack, with its vars ----
cat >"$T/all.yaml" <<YAML
node: {name: n1, cluster: test, groups: [web]}
control: {socket: $T/n1.sock}
state_dir: $T/n1.state
include:
  - file: $B/nginx-holding-page.yaml
    vars: {depends_on: db, flag: /run/choreo-holding/nginx, snippet: /etc/nginx/choreo/holding-page.conf,
           page: /var/www/holding/index.html, retry_after: "120",
           exempt: /healthz /.well-known/acme-challenge/, nginx: nginx}
  - file: $B/apache-holding-page.yaml
    vars: {depends_on: db, flag: /run/choreo-holding/apache, snippet: /etc/apache2/choreo-holding-page.conf,
           page: /var/www/holding/index.html, retry_after: "120", exempt: "", apache: apache2ctl}
  - file: $B/haproxy-drain.yaml
    vars: {depends_on: web, backend: web, socket: /run/haproxy/admin.sock,
           state_file: /var/lib/choreo-haproxy-drain/web}
  - file: $B/flag-file.yaml
    vars: {depends_on: db, state: maintenance, flag: /run/shop/db-maintenance}
  - file: $B/pgbouncer-pause.yaml
    vars: {depends_on: db, host: 127.0.0.1, port: "6432", user: pgbouncer, database: shop}
  - file: $B/systemd-unit.yaml
    vars: {unit: shop-worker.service, depends_on: db}
  - file: $B/systemd-unit-reload.yaml
    vars: {unit: pgbouncer.service, depends_on: db}
  - file: $B/postgresql.yaml
    vars: {host: 127.0.0.1, port: "5432"}
YAML
if command -v pg_isready >/dev/null; then
  check "$T/all.yaml" || fail "choreo check of every pack: $(cat "$T/check.out")"
  grep -q "9 behaviours, 2 checks" "$T/check.out" || fail "check summary: $(cat "$T/check.out")"
  ok "choreo check accepts every pack with its vars"
else
  echo "# pg_isready is not installed: the postgresql pack is checked in real_story.sh only"
fi

# The same pack twice, with the same vars (in another order): an error at
# the second include, naming the first. With other vars it is fine.
cat >"$T/twice.yaml" <<YAML
node: {name: n1}
include:
  - file: $B/systemd-unit.yaml
    vars: {unit: shop-worker.service, depends_on: db}
  - file: $B/systemd-unit.yaml
    vars: {depends_on: db, unit: shop-worker.service}
YAML
check "$T/twice.yaml"; rc=$?
[ "$rc" = 2 ] || fail "a pack included twice: exit $rc, $(cat "$T/check.out")"
grep -q "^$T/twice.yaml:5:5: .*systemd-unit.yaml is already included with the same vars at $T/twice.yaml:3:5$" "$T/check.out" ||
  fail "a pack included twice: $(cat "$T/check.out")"
sed -i 's/unit: shop-worker.service}$/unit: other.service}/' "$T/twice.yaml"
check "$T/twice.yaml" || fail "the same pack for two units: $(cat "$T/check.out")"
ok "a pack included twice with the same vars is an error naming both includes"

# A var missing: an error at each use in the pack, naming the include.
cat >"$T/missing.yaml" <<YAML
node: {name: n1}
include:
  - file: $B/nginx-holding-page.yaml
    vars: {depends_on: db, flag: /run/choreo-holding/nginx, snippet: /etc/nginx/choreo/holding-page.conf,
           page: /var/www/holding/index.html, exempt: "", nginx: nginx}
YAML
check "$T/missing.yaml"; rc=$?
[ "$rc" = 2 ] || fail "a missing var: exit $rc"
line=$(grep -n '"retry_after=${retry_after}"' "$B/nginx-holding-page.yaml" | head -1 | cut -d: -f1)
grep -q "^$B/nginx-holding-page.yaml:$line:[0-9]*: \${retry_after} has no value (include at $T/missing.yaml:3:5)$" "$T/check.out" ||
  fail "a missing var: $(cat "$T/check.out")"
ok "a pack missing a var is an error naming the pack's line and the include's"

# A var the pack never uses.
cat >"$T/unused.yaml" <<YAML
node: {name: n1}
include:
  - file: $B/haproxy-drain.yaml
    vars: {depends_on: web, backend: web, socket: /run/haproxy/admin.sock, state_file: /tmp/x, server: web1}
YAML
check "$T/unused.yaml"; rc=$?
[ "$rc" = 2 ] && grep -q "^$T/unused.yaml:4:96: .*\"server\" is not used in $B/haproxy-drain.yaml" "$T/check.out" ||
  fail "an unused var: exit $rc, $(cat "$T/check.out")"
ok "a var the pack never uses is an error"

# ---- the scripts ----
scripts=()
for f in "$B"/*/*; do
  [ -f "$f" ] && [ -x "$f" ] && scripts+=("$f")
done
[ ${#scripts[@]} -ge 4 ] || fail "pack scripts found: ${scripts[*]}"
for f in "${scripts[@]}"; do
  [ "$(head -1 "$f")" = "#!/bin/sh" ] || fail "$f is not a #!/bin/sh script"
done
if command -v shellcheck >/dev/null; then
  shellcheck -s sh "${scripts[@]}" >"$T/shellcheck.out" 2>&1 || fail "shellcheck: $(cat "$T/shellcheck.out")"
  ok "shellcheck finds nothing in the ${#scripts[@]} pack scripts"
else
  fail "shellcheck is not installed (scripts/deps.sh installs it)"
fi
for f in "${scripts[@]}"; do
  dash -n "$f" || fail "$f is not valid POSIX sh (dash -n)"
done

# Bad arguments are refused (exit 2) before anything is touched.
hp=$B/nginx-holding-page/holding-page
echo "# off" >"$T/snippet.conf"
echo "holding" >"$T/holding.html"
mkdir -p "$T/flags"
good=("flag=$T/flags/holding" "snippet=$T/snippet.conf" "page=$T/holding.html" "retry_after=60" "exempt=/healthz" "nginx=false")
refused() { # refused WHAT COMMAND...: exit 2 and nothing written
  "${@:2}" >"$T/refused.out" 2>&1
  local rc=$?
  [ "$rc" = 2 ] || fail "$1: exit $rc, $(cat "$T/refused.out")"
  [ "$(cat "$T/snippet.conf")" = "# off" ] || fail "$1 changed the snippet"
}
refused "no mode" "$hp"
refused "bad mode" "$hp" maybe "${good[@]}"
refused "a page with a ;" "$hp" on "${good[@]}" 'page=/tmp/x;return 200'
refused "a page with a quote" "$hp" on "${good[@]}" 'page=/tmp/x"y'
refused "a page with a space" "$hp" on "${good[@]}" 'page=/tmp/x y'
refused "a relative snippet" "$hp" on "${good[@]}" 'snippet=snippet.conf'
refused "a snippet with a newline" "$hp" on "${good[@]}" "snippet=$T/x
y"
refused "retry_after not a number" "$hp" on "${good[@]}" 'retry_after=1;'
refused "an empty nginx" "$hp" on "${good[@]}" 'nginx='
refused "an nginx that is an option" "$hp" on "${good[@]}" 'nginx=-g daemon'
refused "an unknown argument" "$hp" on "${good[@]}" 'root=/'
refused "a var missing" "$hp" on "flag=$T/flags/holding" "snippet=$T/snippet.conf" "page=$T/holding.html" "retry_after=60" "nginx=false"
refused "a flag with a quote" "$hp" on "${good[@]}" 'flag=/tmp/x"y'
refused "an exempt prefix not a path" "$hp" on "${good[@]}" 'exempt=/healthz healthz'
refused "an exempt prefix with a regex" "$hp" on "${good[@]}" 'exempt=/a(b|c)'
refused "the flag as the snippet" "$hp" on "${good[@]}" "flag=$T/snippet.conf"
ahp=$B/apache-holding-page/holding-page
agood=("flag=$T/flags/holding" "snippet=$T/snippet.conf" "page=$T/holding.html" "retry_after=60" "exempt=" "apache=false")
refused "apache: a page with a space" "$ahp" on "${agood[@]}" 'page=/tmp/x y'
refused "apache: an apache that is an option" "$ahp" install "${agood[@]}" 'apache=-k stop'
refused "apache: an exempt prefix with a quote" "$ahp" on "${agood[@]}" 'exempt=/a"'
ff=$B/flag-file/flag
refused "flag: a relative path" "$ff" on flag=flags/x
refused "flag: a directory" "$ff" on "flag=$T/flags/"
refused "flag: no mode" "$ff"
sync=$B/haproxy-drain/sync
refused "a backend with a blank" "$sync" "socket=$T/admin.sock" "backend=web; shutdown" "state_file=$T/drained"
refused "a socket with a colon" "$sync" "socket=$T/a:b" "backend=web" "state_file=$T/drained"
refused "a relative state file" "$sync" "socket=$T/admin.sock" "backend=web" "state_file=drained"
pgb=$B/pgbouncer-pause/console
refused "pgbouncer: a database with a ;" "$pgb" pause host=127.0.0.1 port=6432 user=pgbouncer "database=shop;SHUTDOWN"
refused "pgbouncer: a port not a number" "$pgb" pause host=127.0.0.1 port=64x user=pgbouncer database=shop
refused "pgbouncer: a port too large" "$pgb" resume host=127.0.0.1 port=70000 user=pgbouncer database=shop
refused "pgbouncer: a user that is an option" "$pgb" pause host=127.0.0.1 port=6432 user=-W database=shop
refused "pgbouncer: an unknown mode" "$pgb" kill host=127.0.0.1 port=6432 user=pgbouncer database=shop
unit=$B/systemd-unit/unit
refused "a unit that is an option" "$unit" stop --force
refused "a unit with a blank" "$unit" stop "a b"
refused "an unknown action" "$unit" mask shop.service
refused "a migration without a file" "$B/postgresql/migrate"
refused "a migration file that is an option" "$B/postgresql/migrate" --help
ok "the pack scripts refuse bad arguments with exit 2 and touch nothing"

# nginx refusing the snippet at install: it is put back, exit 1. (The
# real thing, with a running nginx, is in real_story.sh.)
"$hp" install "${good[@]}" >"$T/hp.out" 2>&1; rc=$?
[ "$rc" = 1 ] && grep -q "nginx refused its configuration with the new snippet" "$T/hp.out" ||
  fail "nginx -t failing: exit $rc, $(cat "$T/hp.out")"
[ "$(cat "$T/snippet.conf")" = "# off" ] || fail "the snippet was not rolled back: $(cat "$T/snippet.conf")"
for f in "$T"/.choreo-holding.*; do [ ! -e "$f" ] || fail "temporary file left: $f"; done
ok "when nginx -t refuses the snippet at install it is rolled back and the run fails"

# The switch runs no nginx (nginx=false would fail it): the flag, created
# and removed; a snippet that is not the pack's is a failure, the flag on.
"$hp" on "${good[@]}" >"$T/hp.out" 2>&1; rc=$?
[ "$rc" = 1 ] && [ -f "$T/flags/holding" ] && grep -q "the flag is on but $T/snippet.conf is not this pack's snippet" "$T/hp.out" ||
  fail "on with a foreign snippet: exit $rc, $(cat "$T/hp.out")"
"$hp" off "${good[@]}" >"$T/hp.out" 2>&1 && [ ! -e "$T/flags/holding" ] || fail "off: $(cat "$T/hp.out")"
"$hp" off "${good[@]}" >"$T/hp.out" 2>&1 || fail "off twice: $(cat "$T/hp.out")"
for f in "$T"/flags/.holding.*; do [ ! -e "$f" ] || fail "temporary file left: $f"; done
missing_dir=("flag=$T/noflags/holding" "${good[@]:1}")
"$hp" on "${missing_dir[@]}" >"$T/hp.out" 2>&1; rc=$?
[ "$rc" = 1 ] && grep -q "the flag's directory $T/noflags does not exist" "$T/hp.out" || fail "a missing flag directory: exit $rc, $(cat "$T/hp.out")"
ok "the switch is a flag file, created and removed without nginx; a missing flag directory or a foreign snippet fails the run"

# ---- systemd packs, live, with a fake systemctl ----
mkdir -p "$T/bin"
cat >"$T/bin/systemctl" <<'SH'
#!/bin/sh
echo "$*" >>"$SYSTEMCTL_LOG"
case $* in *broken.service) echo "Failed to stop broken.service: Access denied" >&2; exit 1 ;; esac
SH
chmod +x "$T/bin/systemctl"
export SYSTEMCTL_LOG=$T/systemctl.log
pdb=$(free_port); pwk=$(free_port); plb=$(free_port); pw1=$(free_port)
write_config db1 "$pdb" "[db]" "[]"
mkdir -p "$T/run"
write_config worker1 "$pwk" "[worker]" "[tcp://127.0.0.1:$pdb]" "include:
  - file: $B/flag-file.yaml
    vars: {depends_on: db, state: maintenance, flag: $T/run/db-maintenance}
  - file: $B/flag-file.yaml
    vars: {depends_on: db, state: draining, flag: $T/nodir/db-draining}
  - file: $B/systemd-unit.yaml
    vars: {unit: shop-worker.service, depends_on: db}
  - file: $B/systemd-unit-reload.yaml
    vars: {unit: pgbouncer.service, depends_on: db}
  - file: $B/systemd-unit.yaml
    vars: {unit: broken.service, depends_on: db}"
"$CHOREO_BIN" check -c "$T/worker1.yaml" >"$T/check.out" 2>&1 || fail "check worker1: $(cat "$T/check.out")"
start_agent db1
PATH=$T/bin:$PATH start_agent worker1
lines_from() { [ "$(count_lines "$1" "$2")" -ge "$3" ]; }
wait_for "worker1 reloads pgbouncer at start" 10 lines_from "$SYSTEMCTL_LOG" "^try-reload-or-restart -- pgbouncer.service$" 1
settled worker1 5
has_lines "$SYSTEMCTL_LOG" "^stop" 0 || fail "stopped while db1 is ready: $(cat "$SYSTEMCTL_LOG")"

c db1 set maintenance --reason "schema 42" || fail "set maintenance"
wait_for "worker1 stops shop-worker" 10 has_lines "$SYSTEMCTL_LOG" "^stop -- shop-worker.service$" 1
wait_for "worker1 reloads pgbouncer for the maintenance" 10 has_lines "$T/worker1.log" \
  "systemd-unit: try-reload-or-restart pgbouncer.service (change: db1 is maintenance, schema 42)$" 1
grep -q "systemd-shop-worker.service: systemd-unit: stop shop-worker.service (run: db1 is maintenance, schema 42)" "$T/worker1.log" ||
  fail "worker1's log: $(grep systemd "$T/worker1.log")"
# broken.service: systemctl fails; it is tried twice (retries: 1), then
# the failure is logged and counted once.
failures_are() { [ "$(metric "$1" choreo_script_failures_total)" = "$2" ]; }
wait_for "the broken unit's failure is counted" 10 failures_are worker1 1
grep -q "systemd-unit: systemctl stop broken.service failed with status 1 (run: db1 is maintenance, schema 42)" "$T/worker1.log" ||
  fail "the broken unit's failure is not logged: $(grep broken "$T/worker1.log")"
ok "systemd-unit stops a unit when its dependency goes into maintenance; a failing systemctl is logged and counted"
wait_for "the flag-file pack's flag" 10 test -f "$T/run/db-maintenance"
grep -q "^on (run: db1 is maintenance, schema 42)$" "$T/run/db-maintenance" || fail "the flag: $(cat "$T/run/db-maintenance")"
ok "flag-file: the flag exists while db1 is in maintenance"

# The flag-file include whose directory is missing: a counted failure
# (tried twice) with the reason, nothing else stops.
c db1 set draining || fail "set draining"
wait_for "the missing flag directory's failure is counted" 10 failures_are worker1 2
grep -q "flag-file: the flag's directory $T/nodir does not exist" "$T/worker1.log" || fail "worker1's log: $(grep flag-file "$T/worker1.log")"
wait_for "the maintenance flag removed when db1 is draining" 10 test ! -e "$T/run/db-maintenance"
ok "flag-file: a missing flag directory is a failure, logged and counted; the other flag goes on working"
c db1 set maintenance && c db1 set ready || fail "set ready"
wait_for "worker1 starts shop-worker" 10 has_lines "$SYSTEMCTL_LOG" "^start -- shop-worker.service$" 1
wait_for "worker1 reloads pgbouncer for ready" 10 has_lines "$T/worker1.log" \
  "systemd-unit: try-reload-or-restart pgbouncer.service (change: db1 is ready)$" 1
wait_for "the broken unit's second failure" 10 failures_are worker1 3
settled worker1 5
has_lines "$SYSTEMCTL_LOG" "shop-worker.service$" 2 || fail "shop-worker: $(cat "$SYSTEMCTL_LOG")"
[ "$(count_lines "$SYSTEMCTL_LOG" "pgbouncer.service$")" -ge 3 ] || fail "pgbouncer: $(cat "$SYSTEMCTL_LOG")"
ok "systemd-unit starts it again when the dependency is ready; systemd-unit-reload reloads on every change"

# ---- haproxy-drain with no HAProxy: the run fails, loudly, and that's all ----
write_config web1 "$pw1" "[web]" "[tcp://127.0.0.1:$pdb]"
write_config lb1 "$plb" "[lb]" "[tcp://127.0.0.1:$pdb]" "include:
  - file: $B/haproxy-drain.yaml
    vars: {depends_on: web, backend: web, socket: $T/nohaproxy/admin.sock, state_file: $T/drained-web}
  - file: $B/systemd-unit-reload.yaml
    vars: {unit: lb-sidecar.service, depends_on: web}"
"$CHOREO_BIN" check -c "$T/lb1.yaml" >"$T/check.out" 2>&1 || fail "check lb1: $(cat "$T/check.out")"
start_agent web1
PATH=$T/bin:$PATH start_agent lb1
# (How many on: change runs the start makes depends on when web1's join
# arrives: coalesced, one or two. So: at least one, then one more.)
failures_from() { local v; v=$(metric "$1" choreo_script_failures_total); [ -n "$v" ] && [ "$v" -ge "$2" ]; }
wait_for "lb1 counts the failed drain run" 10 failures_from lb1 1
wait_for "lb1 sees web1" 10 sees lb1 web1 ready
settled lb1 5
before=$(metric lb1 choreo_script_failures_total)
grep -q "haproxy-drain: no HAProxy runtime API socket at $T/nohaproxy/admin.sock: is haproxy running" "$T/lb1.log" ||
  fail "lb1's log: $(grep -i haproxy "$T/lb1.log")"
c web1 set draining --reason "kernel upgrade" || fail "set draining"
wait_for "lb1 sees web1 draining" 10 sees lb1 web1 draining
wait_for "lb1 counts another failed run" 10 failures_from lb1 "$((before + 1))"
wait_for "the other behaviour of lb1 still runs" 10 has_lines "$T/lb1.log" \
  "systemd-unit: try-reload-or-restart lb-sidecar.service (change: web1 is draining, kernel upgrade)$" 1
[ "$(state_seen lb1 lb1)" = ready ] || fail "lb1's own state: $(state_seen lb1 lb1)"
ok "haproxy-drain without a socket: each run fails with a clear message, is counted, and nothing else breaks"

# ---- the migration helper, with a fake psql ----
cat >"$T/bin/psql" <<SH
#!/bin/sh
echo "\$*" >"$T/psql.args"
"$CHOREO_BIN" status --json --socket "$T/db1.sock" | jq -r '.node.state + " " + .node.reason' >"$T/psql.state"
exit "\${PSQL_EXIT:-0}"
SH
chmod +x "$T/bin/psql"
echo "ALTER TABLE products ADD COLUMN price_cents integer;" >"$T/42-price-cents.sql"
migrate() {
  CHOREO=$CHOREO_BIN CHOREO_SOCKET=${SOCKET:-$T/db1.sock} PATH=$T/bin:$PATH "$B/postgresql/migrate" "$@"
}
migrate "$T/42-price-cents.sql" -h 127.0.0.1 -d shop || fail "migrate: exit $?"
[ "$(cat "$T/psql.args")" = "-X -v ON_ERROR_STOP=1 --single-transaction -h 127.0.0.1 -d shop -f $T/42-price-cents.sql" ] ||
  fail "psql's arguments: $(cat "$T/psql.args")"
[ "$(cat "$T/psql.state")" = "maintenance migration 42-price-cents.sql" ] || fail "db1 during psql: $(cat "$T/psql.state")"
[ "$(state_seen db1 db1)" = ready ] || fail "db1 after the migration: $(state_seen db1 db1)"
PSQL_EXIT=5 migrate "$T/42-price-cents.sql"; rc=$?
[ "$rc" = 5 ] || fail "migrate with psql failing: exit $rc"
[ "$(state_seen db1 db1)" = ready ] || fail "db1 after a failed migration: $(state_seen db1 db1)"
SOCKET=$T/nobody.sock migrate "$T/42-price-cents.sql" 2>/dev/null; rc=$?
[ "$rc" = 3 ] || fail "migrate without an agent: exit $rc"
ok "postgresql/migrate runs psql in maintenance, in one transaction, and restores the state whatever psql does"
