#!/usr/bin/env bash
# The real shop on loopback: PostgreSQL (db1), two nginx webservers (web1,
# web2) and HAProxy in front (lb1), each with its own choreo agent, all
# from a temporary directory with their own configurations and ports.
#
# db1 runs a real schema migration under `choreo run-in maintenance`:
# while it runs, every request through HAProxy gets the holding page with
# status 503 and Retry-After, and HAProxy keeps both webservers up; after
# it, the shop is back. The switch is a flag file nginx tests on each
# request: no reload. Then web1 drains: HAProxy stops sending it new
# requests, through its runtime API; the drain survives an HAProxy reload,
# and a server an operator put in maint by hand stays there. Nobody
# touches a webserver.
#
# Usage: run.sh [path/to/choreo]. Needs nginx, haproxy, postgresql, socat,
# curl and jq (scripts/deps.sh installs them). Runs as root (the servers
# then drop to postgres and nobody) or as any user.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
source "$here/servers.sh"
choreo=${1:-${CHOREO:-choreo}}
choreo=$(command -v "$choreo" || echo "$choreo")
missing=$(real_missing)
if [ -n "$missing" ]; then
  echo "run.sh: missing: $missing (on Debian: apt-get install nginx-light haproxy postgresql socat curl jq openssl)" >&2
  exit 1
fi
work=$(mktemp -d /tmp/choreo-shop-real.XXXXXX)
trap 'real_stop; [ -n "${KEEP_WORK:-}" ] || rm -rf "$work"' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
url() { echo "http://127.0.0.1:$REAL_HTTP_PORT/"; }
fetch() { # one request through HAProxy; succeeds if its status is $1
  curl -s -D "$work/headers" -o "$work/body" "$(url)" &&
    head -1 "$work/headers" | grep -q " $1 "
}
show() { # a request through HAProxy with status $1 (wait for it), then
  # its status line, Retry-After and body
  real_until 10 "a $1 through HAProxy" fetch "$1"
  printf '  %s\n' "$(head -1 "$work/headers" | tr -d '\r')"
  grep -i '^retry-after' "$work/headers" | tr -d '\r' | sed 's/^/  /' || true
  printf '  %s\n' "$(cat "$work/body")"
}
code_is() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$(url)")" = "$1" ]; }
both_serve() { # both webservers answer with status $1 (asked directly)
  local p
  for p in "$REAL_NGINX1_PORT" "$REAL_NGINX2_PORT"; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/")" = "$1" ] || return 1
  done
}
server_is() { [ "$(real_server_stat "$work/lb1" "$1" status)" = "$2" ]; }
servers() {
  local s
  for s in web1 web2; do
    printf '  haproxy: web/%s is %s\n' "$s" "$(real_server_stat "$work/lb1" "$s" status)"
  done
}
c() { local n=$1 cmd=$2; shift 2; "$choreo" "$cmd" --socket "$work/$n.sock" "$@"; }

say "starting PostgreSQL, nginx web1 and web2, HAProxy, and their agents (in $work)"
real_start_shop "$work" "$choreo"
echo "  shop: $(url)  (HAProxy -> nginx on ports $REAL_NGINX1_PORT and $REAL_NGINX2_PORT; PostgreSQL on $REAL_PG_PORT)"
c lb1 status
show 200
servers

cat >"$work/42-price-cents.sql" <<'SQL'
ALTER TABLE products ADD COLUMN price_cents integer;
UPDATE products SET price_cents = (price * 100)::integer;
DO $$ BEGIN PERFORM pg_sleep(3); END $$;  -- a migration that takes a while
SQL
say "db1: migrate 42-price-cents.sql (choreo run-in maintenance -- psql ...)"
CHOREO=$choreo CHOREO_SOCKET=$work/db1.sock "$REAL_BEHAVIOURS/postgresql/migrate" \
  "$work/42-price-cents.sql" -q -h 127.0.0.1 -p "$REAL_PG_PORT" -U postgres -d shop &
migration=$!
real_until 10 "the holding page through HAProxy" code_is 503
real_until 10 "both webservers on the holding page" both_serve 503
echo "  through HAProxy, while the migration runs:"
show 503
servers
echo "  web1's TLS + HTTP/2 server block, and its /healthz (exempt):"
curl -sk --http2 -o /dev/null -w '  https: HTTP/%{http_version} %{http_code}\n' "https://127.0.0.1:$REAL_TLS1_PORT/"
printf '  /healthz: %s\n' "$(curl -s -w ' %{http_code}' "http://127.0.0.1:$REAL_NGINX1_PORT/healthz" | tr -d '\n')"
for w in web1 web2; do grep "holding-page:" "$work/$w.log" | sed "s/^/  $w log: /"; done

wait "$migration"
say "the migration is done: db1 is $(c db1 status --json | jq -r .node.state) again"
real_until 10 "both webservers serving the shop" both_serve 200
show 200
servers
real_psql "$REAL_PG_PORT" -c "SELECT name, price, price_cents FROM products ORDER BY id" |
  sed -e '/^$/d' -e 's/^/  /'

say "web1: choreo set draining"
c web1 set draining --reason "kernel upgrade"
real_until 10 "web1 draining in HAProxy" server_is web1 DRAIN
servers
grep "haproxy-drain:" "$work/lb1.log" | tail -1 | sed 's/^/  lb1 log: /'
echo "  4 requests through HAProxy: $(for _ in 1 2 3 4; do curl -s "$(url)" | sed 's/.*served by \([a-z0-9]*\).*/\1/'; done | tr '\n' ' ')"

say "lb1: HAProxy reloads (a new worker, which forgets runtime states)"
real_reload_haproxy "$work/lb1"
real_until 10 "web1 drained again" server_is web1 DRAIN
servers
grep "haproxy-drain:" "$work/lb1.log" | tail -1 | sed 's/^/  lb1 log: /'

say "operator: web2 in maint by hand; web1: choreo set ready"
real_haproxy "$work/lb1" "set server web/web2 state maint" >/dev/null
c web1 set ready
real_until 10 "web1 ready in HAProxy" server_is web1 UP
servers
grep "haproxy-drain:" "$work/lb1.log" | tail -1 | sed 's/^/  lb1 log: /'
real_haproxy "$work/lb1" "set server web/web2 state ready" >/dev/null

say "done: nobody logged into a webserver, nginx was never reloaded for a switch"
