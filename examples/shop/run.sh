#!/usr/bin/env bash
# The shop story on loopback: db1, web1 and web2, each with its own agent.
# db1 goes into maintenance for a schema upgrade; both webservers swap to a
# holding page within milliseconds; db1 is ready again; they swap back.
# Nobody touches a webserver. Usage: run.sh [path/to/choreo]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
choreo=${1:-${CHOREO:-choreo}}
choreo=$(command -v "$choreo" || echo "$choreo")
work=$(mktemp -d /tmp/choreo-shop.XXXXXX)
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
page() { # what each webserver serves now
  for w in web1 web2; do
    printf '  %s serves: %s\n' "$w" "$(cat "$work/www/$w/index.html" 2>/dev/null || echo '(site, untouched)')"
  done
}
until_true() { # until_true SECONDS COMMAND...: poll with a deadline
  local end=$(($(date +%s) + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || { echo "timed out: $*" >&2; exit 1; }
    sleep 0.02
  done
}
serving() { grep -q "$2" "$work/www/$1/index.html" 2>/dev/null; }
members() { [ "$("$choreo" status --json --socket "$work/run/$1.sock" | jq '.peers | length')" = 2 ]; }

cd "$work"
mkdir -p run
cp "$here"/*.yaml "$here"/holding-page.sh "$work/"
say "starting db1, web1 and web2 on 127.0.0.1:7411-7413 (logs in $work/*.log)"
for n in db1 web1 web2; do
  "$choreo" agent -c "$n.yaml" 2>"$n.log" &
  pids+=($!)
done
for n in db1 web1 web2; do until_true 10 members "$n"; done
"$choreo" status --socket run/web1.sock

say "db1: choreo set maintenance --reason 'schema upgrade'"
"$choreo" set maintenance --reason "schema upgrade" --socket run/db1.sock
until_true 10 serving web1 Maintenance
until_true 10 serving web2 Maintenance
page
grep -h "holding-page:" web1.log web2.log | sed 's/^/  log: /'

say "db1: choreo set ready"
"$choreo" set ready --socket run/db1.sock
until_true 10 serving web1 Welcome
until_true 10 serving web2 Welcome
page
"$choreo" status --socket run/web2.sock

say "done: nobody logged into a webserver"
