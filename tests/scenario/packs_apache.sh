#!/usr/bin/env bash
# The apache-holding-page pack with Debian's Apache httpd, our own instance
# on a loopback port in this test's directory: the agent installs the
# snippet once (apache2 -t, one graceful restart) and, while db1 is in
# maintenance, Apache answers with the holding page (503, Retry-After, the
# virtual host's HSTS kept) but on the exempt path; the switch is a flag
# file mod_rewrite tests per request, no restart: Apache's pid file and
# generation do not change. A snippet no virtual host includes is found,
# the failure counted, Apache keeps serving.
source "$(dirname "$0")/lib.sh"
source "$CHOREO_SRC/examples/shop-real/servers.sh"

for cmd in apache2 curl jq python3; do
  command -v "$cmd" >/dev/null || { echo "SKIP: $cmd is not installed (scripts/deps.sh installs it)"; exit 77; }
done
# Debian's package may start its own service: not ours, and not wanted.
real_quiet_debian_service apache2
clients=()
trap 'for p in "${clients[@]}"; do kill "$p" 2>/dev/null; done; for n in "${!AGENT_PID[@]}"; do kill_agent "$n" TERM; done; real_stop; cleanup' EXIT

chmod 0711 "$T"
pa1=$(real_free_port); pa2=$(real_free_port)
real_start_apache a1 "$T/a1" "$pa1" || fail "starting Apache a1: $(cat "$T/a1/error.log")"
REAL_SNIPPET_AT=none real_start_apache a2 "$T/a2" "$pa2" || fail "starting Apache a2: $(cat "$T/a2/error.log")"
echo ok >"$T/a1/www/healthz"

pdb=$(free_port); pw1=$(free_port); pw2=$(free_port)
pack() { # pack DIR
  echo "include:
  - file: $CHOREO_SRC/behaviours/apache-holding-page.yaml
    vars: {depends_on: db, flag: $1/flags/holding-page, snippet: $1/holding-page.conf,
           page: $1/holding.html, retry_after: \"60\", exempt: /healthz /.well-known/acme-challenge/,
           apache: \"apache2 $(real_apache_args "$1")\"}"
}
write_config db1 "$pdb" "[db]" "[]"
write_config web1 "$pw1" "[web]" "[tcp://127.0.0.1:$pdb]" "$(pack "$T/a1")"
write_config web2 "$pw2" "[web]" "[tcp://127.0.0.1:$pdb]" "$(pack "$T/a2")"
for n in web1 web2; do
  "$CHOREO_BIN" check -c "$T/$n.yaml" >"$T/check.out" 2>&1 || fail "choreo check $n: $(cat "$T/check.out")"
done
start_agent db1
start_agent web1
start_agent web2
wait_for "web1 installs the snippet" 10 has_lines "$T/web1.log" "apache-holding-page: Apache includes $T/a1/holding-page.conf$" 1
grep -q "apache-holding-page: installed $T/a1/holding-page.conf (flag $T/a1/flags/holding-page), Apache reloaded gracefully once" "$T/web1.log" ||
  fail "web1's log: $(grep apache "$T/web1.log")"
failures_are() { [ "$(metric "$1" choreo_script_failures_total)" = "$2" ]; }
wait_for "web2 counts the snippet included nowhere" 10 failures_are web2 1
grep -q "apache-holding-page: Apache's configuration does not include $T/a2/holding-page.conf: add \"Include $T/a2/holding-page.conf\"" "$T/web2.log" ||
  fail "web2's log: $(grep apache "$T/web2.log")"
code_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1"; }
[ "$(code_of "http://127.0.0.1:$pa2/")" = 200 ] || fail "a2 stopped serving"
ok "the agent installs the snippet once; a snippet no virtual host includes is found, counted, and Apache keeps serving"

url=http://127.0.0.1:$pa1/
[ "$(code_of "$url")" = 200 ] || fail "the shop on Apache: $(code_of "$url")"
pid_before=$(cat "$T/a1/run/httpd.pid")
restarts() { grep -c "resuming normal operations" "$T/a1/error.log" || true; }
restarts_before=$(restarts)
python3 "$CHOREO_SRC/examples/shop-real/client.py" "$url" "$T/ka.log" --keepalive --rate 100 --max-seconds 30 --max-requests 3000 --stop-file "$T/clients.stop" &
clients+=($!)
wait_for "the client's first answers" 10 test -s "$T/ka.log"
c db1 set maintenance --reason "schema 42" || fail "set maintenance"
holding() {
  curl -s -D "$T/headers" -o "$T/body" --max-time 3 "$url" &&
    head -1 "$T/headers" | grep -q "^HTTP/1.1 503 " &&
    grep -qi "^Retry-After: 60"$'\r'"$" "$T/headers" &&
    grep -qi "^Cache-Control: no-store"$'\r'"$" "$T/headers" &&
    grep -qi "^Strict-Transport-Security: max-age=63072000"$'\r'"$" "$T/headers" &&
    grep -q "Maintenance in progress" "$T/body"
}
wait_for "the holding page on Apache" 10 holding
[ "$(curl -s --max-time 3 "http://127.0.0.1:$pa1/healthz")" = ok ] || fail "/healthz is not exempt"
ok "db1 in maintenance: Apache answers with the holding page, 503, Retry-After, HSTS kept; /healthz exempt"

c db1 set ready || fail "set ready"
wait_for "the shop on Apache again" 10 eval '[ "$(code_of "$url")" = 200 ]'
answers_beyond() { [ "$(wc -l <"$1")" -gt "$2" ]; }
wait_for "more answers" 10 answers_beyond "$T/ka.log" "$(($(wc -l <"$T/ka.log") + 30))"
touch "$T/clients.stop"
for p in "${clients[@]}"; do wait "$p"; done
clients=()
[ "$(cat "$T/a1/run/httpd.pid")" = "$pid_before" ] || fail "Apache was restarted"
[ "$(restarts)" = "$restarts_before" ] || fail "Apache was restarted for the switch: $(cat "$T/a1/error.log")"
total=$(wc -l <"$T/ka.log")
errors=$(awk '$2 ~ /^error/' "$T/ka.log" | wc -l)
shop=$(awk '$2 == 200 && $4 == "shop"' "$T/ka.log" | wc -l)
held=$(awk '$2 == 503 && $3 == 60 && $4 == "holding"' "$T/ka.log" | wc -l)
echo "# client: $total requests: $shop shop, $held holding page, $errors connection errors"
[ "$errors" = 0 ] || fail "connection errors: $(awk '$2 ~ /^error/ { print $2 }' "$T/ka.log" | sort | uniq -c)"
[ "$((shop + held))" = "$total" ] && [ "$held" -gt 0 ] && [ "$shop" -gt 0 ] || fail "other answers: $(awk '{ print $2, $3, $4 }' "$T/ka.log" | sort | uniq -c)"
failures_are web1 0 || fail "web1 counted $(metric web1 choreo_script_failures_total) failures"
ok "db1 ready: the shop is back; the client saw only the shop and the holding page, no connection error; no restart for the switch"
