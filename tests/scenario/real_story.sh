#!/usr/bin/env bash
# The story for real: PostgreSQL, two nginx webservers and HAProxy in
# front, from Debian's packages, each with its own choreo agent and the
# packs of behaviours/ (examples/shop-real, on free loopback ports in this
# test's directory).
#
# db1 runs a real migration under `choreo run-in maintenance -- psql`:
# meanwhile every request through HAProxy gets the holding page (503 with
# Retry-After), HAProxy keeps both webservers up, and afterwards the shop
# is back. A client polls through HAProxy the whole time and sees no 500
# and no connection error. A webserver whose nginx refuses the holding page
# counts a failure and keeps serving; web2 draining is drained in HAProxy;
# db1 shows failed while PostgreSQL is down.
source "$(dirname "$0")/lib.sh"
source "$CHOREO_SRC/examples/shop-real/servers.sh"

missing=$(real_missing)
if [ -n "$missing" ]; then
  echo "SKIP: not installed: $missing (scripts/deps.sh installs them)"
  exit 77
fi
poller=
stop_all() { # the client, then the agents (so none reacts to the servers going), then the servers
  local n
  [ -z "$poller" ] || kill "$poller" 2>/dev/null
  for n in "${!AGENT_PID[@]}"; do kill_agent "$n" TERM; done
  real_stop
}
trap 'stop_all; cleanup' EXIT

real_start_shop "$T" "$CHOREO_BIN" || fail "starting the shop"
for n in db1 web1 web2 lb1; do
  "$CHOREO_BIN" check -c "$T/$n.yaml" >"$T/check.out" 2>&1 || fail "choreo check $n: $(cat "$T/check.out")"
done
ok "PostgreSQL, nginx web1 and web2, HAProxy and four agents run; their configurations and packs check"

# webx: a webserver whose nginx includes the snippet in the wrong place,
# so that nginx refuses the holding page's configuration.
pngx=$(real_free_port); pwx=$(real_free_port)
REAL_SNIPPET_AT=http real_start_nginx webx "$T/webx" "$pngx" || fail "starting webx's nginx"
cat >"$T/webx.yaml" <<YAML
node: {name: webx, cluster: shop-real, groups: [web-misconfigured]}
network: {listen: "tcp://127.0.0.1:$pwx", join: ["tcp://127.0.0.1:$REAL_DB1_PORT"], heartbeat: 500ms, lost_after: 3s}
control: {socket: $T/webx.sock, mode: "0600"}
state_dir: $T/webx.state
include:
  - file: $REAL_BEHAVIOURS/nginx-holding-page.yaml
    vars: {depends_on: db, snippet: $T/webx/holding-page.conf, page: $T/webx/holding.html,
           retry_after: "30", nginx: "nginx $(real_nginx_args "$T/webx")"}
YAML
start_agent webx
wait_for "webx sees db1" 10 sees webx db1 ready

url=http://127.0.0.1:$REAL_HTTP_PORT/
code_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1"; }
serves() { [ "$(code_of "$1")" = "$2" ]; }
server_is() { [ "$(real_server_stat "$T/lb1" "$1" status)" = "$2" ]; }
both_nginx_serve() {
  serves "http://127.0.0.1:$REAL_NGINX1_PORT/" "$1" && serves "http://127.0.0.1:$REAL_NGINX2_PORT/" "$1"
}
failures_are() { [ "$(metric "$1" choreo_script_failures_total)" = "$2" ]; }
for s in web1 web2; do wait_for "HAProxy's $s up" 10 server_is "$s" UP; done
serves "$url" 200 || fail "the shop through HAProxy: $(code_of "$url")"

# The client: polls through HAProxy, at most 3000 requests or 60 s, until
# told to stop. One line per request: curl's exit, the status, Retry-After
# and which page came back.
poll() {
  local end=$(($(date +%s) + 60)) out rc page
  for _ in $(seq 1 3000); do
    [ ! -e "$T/poll.stop" ] && [ "$(date +%s)" -lt "$end" ] || break
    out=$(curl -s -o "$T/poll.body" -w '%{http_code} %header{retry-after}' --max-time 3 "$url")
    rc=$?
    case $(cat "$T/poll.body" 2>/dev/null) in
      *Welcome*) page=shop ;;
      *Maintenance*) page=holding ;;
      *) page=other ;;
    esac
    echo "$rc $out $page" >>"$T/poll.log"
    sleep 0.01
  done
}
poll &
poller=$!
wait_for "the client's first answers" 10 test -s "$T/poll.log"

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
# (HAProxy may still reuse a keep-alive connection to an old nginx worker
# for a moment after the reload: poll.)
holding_through_lb() {
  curl -s -D "$T/headers" -o "$T/body" --max-time 3 "$url" &&
    head -1 "$T/headers" | grep -q "^HTTP/1.1 503 " &&
    grep -qi "^Retry-After: 30"$'\r'"$" "$T/headers" &&
    grep -q "Maintenance in progress" "$T/body"
}
wait_for "the holding page, 503 and Retry-After through HAProxy" 10 holding_through_lb
[ "$(state_seen web1 db1)" = maintenance ] || fail "web1 sees db1 $(state_seen web1 db1) during the migration"
kill -0 "$migration" 2>/dev/null || fail "the migration ended before the holding page was checked: $(cat "$T/migration.log")"
for s in web1 web2; do server_is "$s" UP || fail "HAProxy's $s is $(real_server_stat "$T/lb1" "$s" status) during the migration"; done
ok "while the migration runs, HAProxy answers with the holding page, 503 and Retry-After, and keeps both webservers up"

# webx: nginx refused the holding page; the failure is logged and counted
# and webx keeps serving the shop with the old configuration.
wait_for "webx counts its failure" 10 failures_are webx 1
grep -q "holding-page: nginx -t: .*\"if\" directive is not allowed here" "$T/webx.log" ||
  fail "webx's log: $(grep holding "$T/webx.log")"
grep -q "holding-page: nginx refused the configuration with the holding page on" "$T/webx.log" || fail "webx's log"
grep -q "error: nginx-holding-page-db: failed after 2 tries" "$T/webx.log" || fail "webx's log: no failure"
serves "http://127.0.0.1:$pngx/" 200 || fail "webx serves $(code_of "http://127.0.0.1:$pngx/")"
[ "$(cat "$T/webx/holding-page.conf")" = "# choreo's holding page: off" ] || fail "webx's snippet: $(cat "$T/webx/holding-page.conf")"
ok "nginx refusing the holding page: the failure is logged and counted, nginx keeps serving the shop"

wait "$migration" || fail "the migration failed: $(cat "$T/migration.log")"
[ "$(state_seen db1 db1)" = ready ] || fail "db1 after the migration: $(state_seen db1 db1)"
wait_for "both webservers serving the shop" 10 both_nginx_serve 200
wait_for "the shop through HAProxy" 10 serves "$url" 200
[ "$(real_psql "$REAL_PG_PORT" -At -c "SELECT string_agg(price_cents::text, ',' ORDER BY id) FROM products")" = "1850,420,310" ] ||
  fail "the migration's result"
# The client goes on a little longer on the shop, then stops.
answers_beyond() { [ "$(wc -l <"$T/poll.log")" -gt "$1" ]; }
wait_for "more answers after the migration" 10 answers_beyond "$(($(wc -l <"$T/poll.log") + 20))"
touch "$T/poll.stop"
wait "$poller"
poller=
ok "after the migration the shop is back through HAProxy, and db1 is ready"

total=$(wc -l <"$T/poll.log")
errors=$(awk '$1 != 0' "$T/poll.log" | wc -l)
e500=$(awk '$2 == 500' "$T/poll.log" | wc -l)
shop=$(awk '$1 == 0 && $2 == 200 && $3 == "shop"' "$T/poll.log" | wc -l)
holding=$(awk '$1 == 0 && $2 == 503 && $3 == 30 && $4 == "holding"' "$T/poll.log" | wc -l)
echo "# client: $total requests: $shop shop, $holding holding page, $errors connection errors, $e500 500s"
[ "$errors" = 0 ] || fail "connection errors: $(awk '$1 != 0' "$T/poll.log" | sort | uniq -c)"
[ "$e500" = 0 ] || fail "500s: $e500"
[ "$((shop + holding))" = "$total" ] || fail "other answers: $(awk '!(($2 == 200 && $4 == "shop") || ($2 == 503 && $3 == 30 && $4 == "holding"))' "$T/poll.log" | sort | uniq -c)"
[ "$holding" -gt 0 ] && [ "$shop" -gt 0 ] || fail "the client saw $shop shop pages and $holding holding pages"
for s in web1 web2; do
  [ "$(real_server_stat "$T/lb1" "$s" chkdown)" = 0 ] ||
    fail "HAProxy marked $s down $(real_server_stat "$T/lb1" "$s" chkdown) times"
done
ok "the client through HAProxy: only the shop and the holding page, no 500, no connection error; no server ever down"

# haproxy-drain: a webserver's state drives its server in HAProxy.
c web2 set draining --reason "kernel upgrade" || fail "set draining"
wait_for "HAProxy drains web2" 10 server_is web2 DRAIN
c web2 set maintenance || fail "set maintenance"
wait_for "HAProxy puts web2 in maint" 10 server_is web2 MAINT
serves "$url" 200 || fail "the shop with web2 in maint"
c web2 set ready || fail "set ready"
wait_for "HAProxy has web2 ready" 10 server_is web2 UP
server_is web1 UP || fail "web1 is $(real_server_stat "$T/lb1" web1 status)"
failures_are lb1 0 || fail "lb1 counted $(metric lb1 choreo_script_failures_total) failures"
grep -q "haproxy-drain: backend web: web1=ready web2=drain" "$T/lb1.log" || fail "lb1's log: $(grep haproxy-drain "$T/lb1.log")"
ok "web2 draining, in maintenance, ready: drain, maint, ready in HAProxy through its runtime API"

# The postgresql pack's check: db1 is failed while PostgreSQL is down.
real_as_pg "$REAL_PGBIN/pg_ctl" -D "$REAL_PGDATA" -m fast -w stop >/dev/null || fail "stopping PostgreSQL"
wait_for "db1 failed" 15 sees web1 db1 failed
real_as_pg "$REAL_PGBIN/pg_ctl" -D "$REAL_PGDATA" -l "$T/pg/postgres.log" -w start >/dev/null || fail "starting PostgreSQL"
wait_for "db1 ready again" 15 sees web1 db1 ready
ok "db1 shows failed while PostgreSQL does not answer pg_isready, ready when it does"
