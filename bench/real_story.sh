#!/usr/bin/env bash
# The real story's latency: from the start of
#   choreo run-in maintenance -- psql ... (a migration of about a second)
# on db1 to the first holding page (503) answered through HAProxy, in the
# shop of examples/shop-real (PostgreSQL, two nginx, HAProxy, four agents on
# loopback). Between rounds the shop is back on both webservers. Prints each
# round and the median.
#
# Usage: bench/real_story.sh [path/to/choreo] [ROUNDS]   (default 10 rounds)
# Needs what examples/shop-real/run.sh needs (scripts/deps.sh installs it).
#
# The clock starts before the choreo CLI is spawned, and the client is a
# loop of curl processes, so a figure includes one CLI start, the gossip to
# the webservers, the pack's `nginx -t` and reload, and up to one curl.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../examples/shop-real/servers.sh"
choreo=${1:-${CHOREO:-choreo}}
choreo=$(command -v "$choreo" || echo "$choreo")
rounds=${2:-10}
missing=$(real_missing)
if [ -n "$missing" ]; then
  echo "real_story: missing: $missing" >&2
  exit 1
fi
work=$(mktemp -d /tmp/choreo-bench-real.XXXXXX)
trap 'real_stop; rm -rf "$work"' EXIT

real_start_shop "$work" "$choreo" >/dev/null
url=http://127.0.0.1:$REAL_HTTP_PORT/
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1"; }
both_serve() {
  [ "$(code "http://127.0.0.1:$REAL_NGINX1_PORT/")" = "$1" ] &&
    [ "$(code "http://127.0.0.1:$REAL_NGINX2_PORT/")" = "$1" ] && [ "$(code "$url")" = "$1" ]
}

samples=()
for i in $(seq 1 "$rounds"); do
  real_until 10 "the shop on both webservers" both_serve 200
  t0=$(date +%s%N)
  "$choreo" run-in maintenance --reason "bench $i" --socket "$work/db1.sock" -- \
    psql -X -q -h 127.0.0.1 -p "$REAL_PG_PORT" -U postgres -d shop \
    -c "DO \$\$ BEGIN PERFORM pg_sleep(1); END \$\$" >/dev/null &
  migration=$!
  deadline=$((t0 + 10000000000))
  until [ "$(code "$url")" = 503 ]; do
    [ "$(date +%s%N)" -lt "$deadline" ] || { echo "round $i: no holding page after 10 s" >&2; exit 1; }
  done
  t1=$(date +%s%N)
  ms=$(( (t1 - t0) / 1000 ))
  samples+=("$ms")
  printf 'round %2d: %d.%03d ms\n' "$i" $((ms / 1000)) $((ms % 1000))
  wait "$migration"
done

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
