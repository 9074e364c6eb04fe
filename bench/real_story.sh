#!/usr/bin/env bash
# The real story's latency and its clients: from the start of
#   choreo run-in maintenance -- psql ... (a migration of about a second)
# on db1 to the first holding page (503) answered through HAProxy, in the
# shop of examples/shop-real (PostgreSQL, two nginx, HAProxy, four agents on
# loopback), ROUNDS times. Between rounds the shop is back on both
# webservers. Meanwhile a keep-alive client and a fresh-connection client
# (examples/shop-real/client.py, 50 requests a second each, bounded) go
# through HAProxy the whole time; at the end their connection errors and
# answers other than the shop and the holding page are counted.
#
# Usage: bench/real_story.sh [path/to/choreo] [ROUNDS]   (default 20 rounds)
# Needs what examples/shop-real/run.sh needs (scripts/deps.sh installs it).
# Exit 1 if a client saw a connection error or another answer.
#
# The clock starts before the choreo CLI is spawned and the prober keeps
# one connection to HAProxy open, asking again as soon as an answer comes:
# a figure includes one CLI start, the gossip to the webservers, the pack's
# switch (a flag file: no nginx -t, no reload) and one request.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../examples/shop-real/servers.sh"
choreo=${1:-${CHOREO:-choreo}}
choreo=$(command -v "$choreo" || echo "$choreo")
rounds=${2:-20}
missing=$(real_missing)
if [ -n "$missing" ]; then
  echo "real_story: missing: $missing" >&2
  exit 1
fi
work=$(mktemp -d /tmp/choreo-bench-real.XXXXXX)
clients=()
trap 'touch "$work/clients.stop"; for p in "${clients[@]}"; do kill "$p" 2>/dev/null || true; done; real_stop; rm -rf "$work"' EXIT

real_start_shop "$work" "$choreo" >/dev/null
url=http://127.0.0.1:$REAL_HTTP_PORT/
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1"; }
both_serve() {
  [ "$(code "http://127.0.0.1:$REAL_NGINX1_PORT/")" = "$1" ] &&
    [ "$(code "http://127.0.0.1:$REAL_NGINX2_PORT/")" = "$1" ] && [ "$(code "$url")" = "$1" ]
}
real_until 10 "the shop through HAProxy" both_serve 200

limit=$((rounds * 6 + 30))
for name in keepalive fresh; do
  mode=()
  [ "$name" = fresh ] || mode=(--keepalive)
  python3 "$here/../examples/shop-real/client.py" "$url" "$work/client-$name.log" "${mode[@]}" --rate 50 \
    --max-seconds "$limit" --max-requests $((limit * 50)) --stop-file "$work/clients.stop" &
  clients+=($!)
done

# One round: spawn the migration, ask HAProxy on one keep-alive connection
# until it answers 503; print the microseconds in between.
probe() {
  python3 - "$REAL_HTTP_PORT" "$@" <<'PY'
import http.client, subprocess, sys, time
port, cmd = int(sys.argv[1]), sys.argv[2:]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
conn.request("GET", "/"); conn.getresponse().read()
t0 = time.monotonic_ns()
mig = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
while True:
    conn.request("GET", "/")
    r = conn.getresponse(); r.read()
    if r.status == 503:
        break
    if time.monotonic_ns() - t0 > 10e9:
        sys.exit("no holding page after 10 s")
print((time.monotonic_ns() - t0) // 1000)
sys.exit(mig.wait())
PY
}

samples=()
for i in $(seq 1 "$rounds"); do
  real_until 10 "the shop on both webservers" both_serve 200
  us=$(probe "$choreo" run-in maintenance --reason "bench $i" --socket "$work/db1.sock" -- \
    psql -X -q -h 127.0.0.1 -p "$REAL_PG_PORT" -U postgres -d shop \
    -c "DO \$\$ BEGIN PERFORM pg_sleep(1); END \$\$")
  samples+=("$us")
  printf 'round %2d: %d.%03d ms\n' "$i" $((us / 1000)) $((us % 1000))
done
real_until 10 "the shop on both webservers" both_serve 200
touch "$work/clients.stop"
for p in "${clients[@]}"; do wait "$p"; done
clients=()

mapfile -t sorted < <(printf '%s\n' "${samples[@]}" | sort -n)
n=${#sorted[@]}
if [ $((n % 2)) = 1 ]; then
  median=${sorted[$((n / 2))]}
else
  median=$(( (sorted[n / 2 - 1] + sorted[n / 2]) / 2 ))
fi
printf 'run-in start -> first 503 through HAProxy, %d rounds: median %d.%03d ms (min %d.%03d, max %d.%03d)\n' \
  "$n" $((median / 1000)) $((median % 1000)) $((sorted[0] / 1000)) $((sorted[0] % 1000)) \
  $((sorted[n - 1] / 1000)) $((sorted[n - 1] % 1000))
bad=0
for name in keepalive fresh; do
  f=$work/client-$name.log
  total=$(wc -l <"$f")
  errors=$(awk '$2 ~ /^error/' "$f" | wc -l)
  shop=$(awk '$2 == 200 && $4 == "shop"' "$f" | wc -l)
  held=$(awk '$2 == 503 && $4 == "holding"' "$f" | wc -l)
  other=$((total - errors - shop - held))
  printf 'client %s: %d requests: %d shop, %d holding page, %d connection errors, %d other answers\n' \
    "$name" "$total" "$shop" "$held" "$errors" "$other"
  [ "$errors" = 0 ] && [ "$other" = 0 ] || bad=1
done
exit "$bad"
