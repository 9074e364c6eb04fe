#!/usr/bin/env bash
# The story for real: PostgreSQL, two nginx webservers (each with a plain
# HTTP and a TLS + HTTP/2 server block sharing the holding-page snippet)
# and HAProxy in front, from Debian's packages, each with its own choreo
# agent and the packs of behaviours/ (examples/shop-real, on free loopback
# ports in this test's directory).
#
# db1 runs a real migration under `choreo run-in maintenance -- psql`:
# meanwhile every request through HAProxy gets the holding page (503 with
# Retry-After, the server blocks' HSTS and CSP kept), but /healthz; HAProxy
# keeps both webservers up, and afterwards the shop is back. The switch is
# a flag file: no reload, so a broken unrelated nginx file doesn't block
# it, and a keep-alive client and a fresh-connection client, through
# HAProxy and straight to nginx, see no connection error and no 5xx but
# the holding page. nginx refusing the snippet and a snippet no server
# block includes are failures, counted, the webserver keeps serving.
# HAProxy: draining and maintenance drive drain and maint, a manual maint
# is never undone, a drain survives an HAProxy reload. db1 shows failed
# while PostgreSQL is down.
source "$(dirname "$0")/lib.sh"
source "$CHOREO_SRC/examples/shop-real/servers.sh"

missing=$(real_missing)
if [ -n "$missing" ]; then
  echo "SKIP: not installed: $missing (scripts/deps.sh installs them)"
  exit 77
fi
clients=()
stop_all() { # the clients, then the agents (so none reacts to the servers going), then the servers
  local n p
  for p in "${clients[@]}"; do kill "$p" 2>/dev/null; done
  for n in "${!AGENT_PID[@]}"; do kill_agent "$n" TERM; done
  real_stop
}
trap 'stop_all; cleanup' EXIT

real_start_shop "$T" "$CHOREO_BIN" || fail "starting the shop"
for n in db1 web1 web2 lb1; do
  "$CHOREO_BIN" check -c "$T/$n.yaml" >"$T/check.out" 2>&1 || fail "choreo check $n: $(cat "$T/check.out")"
done
# (A script's line reaches the agent's log a moment after what it did: wait.)
logged() { grep -q -- "$2" "$1"; }
for n in web1 web2; do
  wait_for "$n's snippet included in both server blocks" 10 logged "$T/$n.log" \
    "holding-page: $T/$n/holding-page.conf is included in 2 of nginx's 2 server blocks"
done
ok "PostgreSQL, nginx web1 and web2, HAProxy and four agents run; their configurations and packs check; the snippet is installed and included in both server blocks"

# A webserver whose agent runs the pack against an nginx that is set up
# wrong: webx includes the snippet in the http block (nginx refuses it),
# webn includes it nowhere, and its flag's directory is missing.
web_agent() { # web_agent NAME [FLAG_DIR]
  local name=$1 flags=${2:-$T/$1/flags} port
  port=$(real_free_port)
  cat >"$T/$name.yaml" <<YAML
node: {name: $name, cluster: shop-real, groups: [web-misconfigured]}
network: {listen: "tcp://127.0.0.1:$port", join: ["tcp://127.0.0.1:$REAL_DB1_PORT"], heartbeat: 500ms, lost_after: 3s}
control: {socket: $T/$name.sock, mode: "0600"}
state_dir: $T/$name.state
include:
  - file: $REAL_BEHAVIOURS/nginx-holding-page.yaml
    vars: {depends_on: db, flag: $flags/holding-page, snippet: $T/$name/holding-page.conf,
           page: $T/$name/holding.html, retry_after: "30", exempt: "",
           nginx: "nginx $(real_nginx_args "$T/$name")"}
YAML
  start_agent "$name"
}
pngx=$(real_free_port); pngn=$(real_free_port)
REAL_SNIPPET_AT=http real_start_nginx webx "$T/webx" "$pngx" || fail "starting webx's nginx"
REAL_SNIPPET_AT=none real_start_nginx webn "$T/webn" "$pngn" || fail "starting webn's nginx"
web_agent webx
web_agent webn "$T/webn/noflags"
failures_are() { [ "$(metric "$1" choreo_script_failures_total)" = "$2" ]; }
wait_for "webx counts the refused snippet" 10 failures_are webx 1
grep -q "holding-page: nginx -t: .*directive is not allowed here" "$T/webx.log" ||
  fail "webx's log: $(grep holding "$T/webx.log")"
grep -q "holding-page: nginx refused its configuration with the new snippet $T/webx/holding-page.conf; put the previous one back" "$T/webx.log" ||
  fail "webx's log: $(grep holding "$T/webx.log")"
[ "$(cat "$T/webx/holding-page.conf")" = "# choreo's holding page: not installed yet" ] ||
  fail "webx's snippet was not put back: $(head -3 "$T/webx/holding-page.conf")"
wait_for "webn counts the snippet included nowhere" 10 failures_are webn 1
grep -q "holding-page: nginx's configuration does not include $T/webn/holding-page.conf: add \"include $T/webn/holding-page.conf;\" as the first line of each server block that should show the holding page: $T/webn/nginx.conf:[0-9]* (listen 127.0.0.1:$pngn)" "$T/webn.log" ||
  fail "webn's log: $(grep holding "$T/webn.log")"
code_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$@"; }
serves() { [ "$(code_of "$1")" = "$2" ]; }
serves "http://127.0.0.1:$pngx/" 200 && serves "http://127.0.0.1:$pngn/" 200 || fail "webx or webn stopped serving"
ok "a snippet nginx refuses is put back, a snippet no server block includes is found (the check says where to add it): failures logged and counted, nginx keeps serving"

url=http://127.0.0.1:$REAL_HTTP_PORT/
server_is() { [ "$(real_server_stat "$T/lb1" "$1" status)" = "$2" ]; }
both_nginx_serve() {
  serves "http://127.0.0.1:$REAL_NGINX1_PORT/" "$1" && serves "http://127.0.0.1:$REAL_NGINX2_PORT/" "$1"
}
for s in web1 web2; do wait_for "HAProxy's $s up" 10 server_is "$s" UP; done
serves "$url" 200 || fail "the shop through HAProxy: $(code_of "$url")"

# Something unrelated broken in nginx's configuration: the next `nginx -t`
# or reload would fail. The switch needs neither.
echo "this is not nginx configuration" >"$T/web1/conf.d/broken.conf"
nginx $(real_nginx_args "$T/web1") -t -q >/dev/null 2>&1 && fail "nginx -t accepts the broken file"

# The clients, at most 60 s or 6000 requests each: through HAProxy with
# keep-alive and with a fresh connection per request, and straight to
# web1's nginx with keep-alive (a reload would close its connection).
client=$CHOREO_SRC/examples/shop-real/client.py
python3 "$client" "$url" "$T/ka.log" --keepalive --rate 100 --max-seconds 60 --max-requests 6000 --stop-file "$T/clients.stop" &
clients+=($!)
python3 "$client" "$url" "$T/fresh.log" --rate 50 --max-seconds 60 --max-requests 3000 --stop-file "$T/clients.stop" &
clients+=($!)
python3 "$client" "http://127.0.0.1:$REAL_NGINX1_PORT/" "$T/direct.log" --keepalive --rate 50 --max-seconds 60 --max-requests 3000 --stop-file "$T/clients.stop" &
clients+=($!)
for f in ka fresh direct; do wait_for "the $f client's first answers" 10 test -s "$T/$f.log"; done

# The migration, as an operator would run it on db1.
cat >"$T/42-price-cents.sql" <<'SQL'
ALTER TABLE products ADD COLUMN price_cents integer;
UPDATE products SET price_cents = (price * 100)::integer;
DO $$ BEGIN PERFORM pg_sleep(2); END $$;
SQL
start=$(date +%s%N)
CHOREO=$CHOREO_BIN CHOREO_SOCKET=$T/db1.sock "$REAL_BEHAVIOURS/postgresql/migrate" \
  "$T/42-price-cents.sql" -q -h 127.0.0.1 -p "$REAL_PG_PORT" -U postgres -d shop >"$T/migration.log" 2>&1 &
migration=$!
wait_for "the holding page through HAProxy" 10 serves "$url" 503
echo "# first 503 through HAProxy $(( ($(date +%s%N) - start) / 1000000 )) ms after the migration started"
wait_for "both webservers on the holding page" 10 both_nginx_serve 503
holding() { # holding URL [CURL_OPTION]...: the holding page, 503, Retry-After, no caching, HSTS kept
  curl -s -D "$T/headers" -o "$T/body" --max-time 3 "${@:2}" "$1" &&
    head -1 "$T/headers" | grep -q "^HTTP/[0-9.]* 503 " &&
    grep -qi "^Retry-After: 30"$'\r'"$" "$T/headers" &&
    grep -qi "^Cache-Control: no-store"$'\r'"$" "$T/headers" &&
    grep -qi "^Strict-Transport-Security: max-age=63072000"$'\r'"$" "$T/headers" &&
    grep -q "Maintenance in progress" "$T/body"
}
holding "$url" || fail "through HAProxy: $(cat "$T/headers" "$T/body")"
grep -qi "^Content-Security-Policy: default-src 'self'"$'\r'"$" "$T/headers" || fail "no CSP on the holding page: $(cat "$T/headers")"
holding "https://127.0.0.1:$REAL_TLS1_PORT/some/page" --http2 --cacert "$REAL_CERT" --resolve "localhost:$REAL_TLS1_PORT:127.0.0.1" ||
  holding "https://localhost:$REAL_TLS1_PORT/some/page" --http2 --cacert "$REAL_CERT" --resolve "localhost:$REAL_TLS1_PORT:127.0.0.1" ||
  fail "TLS server block: $(cat "$T/headers" "$T/body")"
grep -q "^HTTP/2 503" "$T/headers" || fail "not HTTP/2: $(head -1 "$T/headers")"
[ "$(curl -s --max-time 3 "http://127.0.0.1:$REAL_NGINX1_PORT/healthz")" = ok ] || fail "/healthz is not exempt"
serves "http://127.0.0.1:$REAL_NGINX1_PORT/.well-known/acme-challenge/token" 404 || fail "ACME challenges are not exempt"
curl -s -o /dev/null -D "$T/headers" "http://127.0.0.1:$REAL_NGINX1_PORT/healthz"
grep -qi "^Retry-After" "$T/headers" && fail "/healthz has a Retry-After"
[ "$(state_seen web1 db1)" = maintenance ] || fail "web1 sees db1 $(state_seen web1 db1) during the migration"
kill -0 "$migration" 2>/dev/null || fail "the migration ended before the holding page was checked: $(cat "$T/migration.log")"
for s in web1 web2; do server_is "$s" UP || fail "HAProxy's $s is $(real_server_stat "$T/lb1" "$s" status) during the migration"; done
ok "while the migration runs: the holding page (503, Retry-After, HSTS and CSP kept) through HAProxy and on the TLS + HTTP/2 server block, /healthz and ACME exempt, both webservers up"

wait_for "web1's switch logged" 10 logged "$T/web1.log" \
  "nginx-holding-page-db: holding-page: $T/web1/flags/holding-page on (run: db1 is maintenance, migration 42-price-cents.sql)"
ok "the switch is a flag file, done with the unrelated broken file in nginx's configuration"
# webx: the flag is on but its nginx doesn't test it: a second failure.
wait_for "webx counts the flag without a snippet" 10 failures_are webx 2
grep -q "holding-page: the flag is on but $T/webx/holding-page.conf is not this pack's snippet" "$T/webx.log" || fail "webx's log"
serves "http://127.0.0.1:$pngx/" 200 || fail "webx serves $(code_of "http://127.0.0.1:$pngx/")"
# webn: no flag directory, nothing created: a failure, the site served.
wait_for "webn counts the missing flag directory" 10 failures_are webn 2
grep -q "holding-page: the flag's directory $T/webn/noflags does not exist" "$T/webn.log" || fail "webn's log: $(grep holding "$T/webn.log")"
serves "http://127.0.0.1:$pngn/" 200 || fail "webn serves $(code_of "http://127.0.0.1:$pngn/")"
ok "a missing flag directory: the switch fails, logged and counted, nginx keeps serving the site"

wait "$migration" || fail "the migration failed: $(cat "$T/migration.log")"
[ "$(state_seen db1 db1)" = ready ] || fail "db1 after the migration: $(state_seen db1 db1)"
wait_for "both webservers serving the shop" 10 both_nginx_serve 200
wait_for "the shop through HAProxy" 10 serves "$url" 200
[ "$(real_psql "$REAL_PG_PORT" -At -c "SELECT string_agg(price_cents::text, ',' ORDER BY id) FROM products")" = "1850,420,310" ] ||
  fail "the migration's result"
[ ! -e "$T/web1/flags/holding-page" ] || fail "web1's flag is still there"
# The clients go on a little longer on the shop, then stop.
answers_beyond() { [ "$(wc -l <"$1")" -gt "$2" ]; }
wait_for "more answers after the migration" 10 answers_beyond "$T/ka.log" "$(($(wc -l <"$T/ka.log") + 50))"
touch "$T/clients.stop"
for p in "${clients[@]}"; do wait "$p"; done
clients=()
rm -f "$T/web1/conf.d/broken.conf"
ok "after the migration the shop is back through HAProxy, and db1 is ready"

for f in ka fresh direct; do
  total=$(wc -l <"$T/$f.log")
  errors=$(awk '$2 ~ /^error/' "$T/$f.log" | wc -l)
  shop=$(awk '$2 == 200 && $4 == "shop"' "$T/$f.log" | wc -l)
  held=$(awk '$2 == 503 && $3 == 30 && $4 == "holding"' "$T/$f.log" | wc -l)
  echo "# $f client: $total requests: $shop shop, $held holding page, $errors connection errors, $((total - shop - held - errors)) other"
  [ "$errors" = 0 ] || fail "$f: connection errors: $(awk '$2 ~ /^error/ { print $2 }' "$T/$f.log" | sort | uniq -c)"
  [ "$((shop + held))" = "$total" ] || fail "$f: other answers: $(awk '!(($2 == 200 && $4 == "shop") || ($2 == 503 && $3 == 30 && $4 == "holding")) { print $2, $3, $4 }' "$T/$f.log" | sort | uniq -c)"
  [ "$held" -gt 0 ] && [ "$shop" -gt 0 ] || fail "$f: $shop shop pages and $held holding pages"
done
for s in web1 web2; do
  [ "$(real_server_stat "$T/lb1" "$s" chkdown)" = 0 ] ||
    fail "HAProxy marked $s down $(real_server_stat "$T/lb1" "$s" chkdown) times"
done
ok "keep-alive and fresh-connection clients, through HAProxy and straight to nginx: only the shop and the holding page, no other 5xx, no connection error; no server ever down"

# haproxy-drain: a webserver's state drives its server in HAProxy; an
# operator's maint is never undone; a drain survives a reload.
api() { real_haproxy "$T/lb1" "$1"; }
api "set server web/web1 state maint" >/dev/null
c web2 set draining --reason "kernel upgrade" || fail "set draining"
wait_for "HAProxy drains web2" 10 server_is web2 DRAIN
c web1 set draining --reason "by its agent" && c web1 set ready || fail "web1 set draining, ready"
c web2 set maintenance || fail "set maintenance"
wait_for "HAProxy puts web2 in maint" 10 server_is web2 MAINT
wait_for "lb1 saw web1 ready" 10 sees lb1 web1 ready
settled lb1 3
server_is web1 MAINT || fail "the operator's maint of web1 was undone: $(real_server_stat "$T/lb1" web1 status)"
wait_for "lb1 logs the manual maint left alone" 10 logged "$T/lb1.log" \
  "haproxy-drain: backend web: web2=maint (left as set by hand: web1=maint)"
ok "an operator's maint survives every change in the web group, web1's own draining and ready included"

api "set server web/web1 state ready" >/dev/null
real_reload_haproxy "$T/lb1" || fail "reloading HAProxy"
wait_for "the drain set again after the reload" 10 server_is web2 MAINT
wait_for "lb1 logs the drain set again" 10 logged "$T/lb1.log" \
  "haproxy-drain: HAProxy restarted (pid [0-9]* -> [0-9]*): set web/web2 maint again"
server_is web1 UP || fail "web1 is $(real_server_stat "$T/lb1" web1 status) after the reload"
ok "a maint set by the pack survives an HAProxy reload (set again by the pack's check)"

c web2 set ready || fail "set ready"
wait_for "HAProxy has web2 ready" 10 server_is web2 UP
serves "$url" 200 || fail "the shop"
wait_for "lb1 logs web2 ready" 10 logged "$T/lb1.log" "haproxy-drain: backend web: web2=ready"
failures_are lb1 0 || fail "lb1 counted $(metric lb1 choreo_script_failures_total) failures"
[ ! -s "$T/lb1/choreo-drained-web" ] || fail "the record still holds: $(cat "$T/lb1/choreo-drained-web")"
ok "web2 ready: ready in HAProxy, and forgotten by the pack's record"

# The postgresql pack's check: db1 is failed while PostgreSQL is down.
real_as_pg "$REAL_PGBIN/pg_ctl" -D "$REAL_PGDATA" -m fast -w stop >/dev/null || fail "stopping PostgreSQL"
wait_for "db1 failed" 15 sees web1 db1 failed
real_as_pg "$REAL_PGBIN/pg_ctl" -D "$REAL_PGDATA" -l "$T/pg/postgres.log" -w start >/dev/null || fail "starting PostgreSQL"
wait_for "db1 ready again" 15 sees web1 db1 ready
ok "db1 shows failed while PostgreSQL does not answer pg_isready, ready when it does"
