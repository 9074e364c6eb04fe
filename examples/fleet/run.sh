#!/usr/bin/env bash
# The shop story at fleet size, on loopback: two relays, one database and
# WEBS webservers (default 40), every webserver a leaf of both relays
# (docs/OPERATIONS.md "Relays"). db1 goes into maintenance; every
# webserver swaps to the holding page; db1 is ready; they swap back. The
# relays' counters show what they forwarded and what they kept back (the
# unchanged heartbeats), and a leaf's that it holds two connections, not
# one per member.
# Usage: run.sh [path/to/choreo] [WEBS]; BASE_PORT (default 7600) is the
# first of the WEBS + 3 loopback ports it uses.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
choreo=${1:-${CHOREO:-choreo}}
choreo=$(command -v "$choreo" || echo "$choreo")
case $choreo in */*) choreo=$(cd "$(dirname "$choreo")" && pwd)/$(basename "$choreo") ;; esac
webs=${2:-40}
base=${BASE_PORT:-7600}
work=$(mktemp -d /tmp/choreo-fleet.XXXXXX)
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
until_true() { # until_true SECONDS COMMAND...: poll with a deadline
  local end=$(($(date +%s) + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || {
      echo "timed out: $*" >&2
      grep -H "error" "$work"/*.log >&2 || true # an agent that could not start
      exit 1
    }
    sleep 0.02
  done
}
ctl() { local n=$1; shift; "$choreo" "$@" --socket "$work/run/$n.sock"; }
members() { [ "$(ctl "$1" status --json | jq '.peers | length + 1')" = "$total" ]; }
all_serving() { # all_serving TEXT: every webserver's page says TEXT
  for i in $(seq 1 "$webs"); do
    grep -q "$1" "$work/www/web$i/index.html" 2>/dev/null || return 1
  done
}
metric() { ctl "$1" metrics | awk -v m="$2" '$1 == m { print $2 }'; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# config TEMPLATE NAME PORT GROUP [BEHAVIOURS_FILE] [JOIN]
config() {
  local behaviours=""
  [ -n "${5:-}" ] && behaviours=$(cat "$5")
  awk -v name="$2" -v port="$3" -v group="$4" -v join="${6:-}" \
    -v r1="$base" -v r2="$((base + 1))" -v beh="$behaviours" '
    { gsub(/@NAME@/, name); gsub(/@PORT@/, port); gsub(/@GROUP@/, group);
      gsub(/@JOIN@/, join); gsub(/@RELAY1@/, r1); gsub(/@RELAY2@/, r2);
      gsub(/@BEHAVIOURS@/, beh); print }' "$here/$1" > "$work/$2.yaml"
}

total=$((webs + 3))
cd "$work"
mkdir -p run
cp "$here/../shop/holding-page.sh" .
config relay.yaml.in relay1 "$base" relay
config relay.yaml.in relay2 "$((base + 1))" relay "" "tcp://127.0.0.1:$base"
config leaf.yaml.in db1 "$((base + 2))" db
for i in $(seq 1 "$webs"); do
  config leaf.yaml.in "web$i" "$((base + 2 + i))" web "$here/web-behaviours.yaml"
done
for f in *.yaml; do "$choreo" check -c "$f" >/dev/null; done

say "starting 2 relays, db1 and $webs webservers on 127.0.0.1:$base-$((base + total - 1)) (logs in $work/*.log)"
for n in relay1 relay2 db1 $(seq -f "web%g" 1 "$webs"); do
  "$choreo" agent -c "$n.yaml" 2>"$n.log" &
  pids+=($!)
done
t=$(date +%s%N)
for n in relay1 relay2 db1 $(seq -f "web%g" 1 "$webs"); do until_true 30 members "$n"; done
echo "  every agent sees all $total members after $(ms_since "$t") ms"
echo "  web1's outgoing connections: $(metric web1 'choreo_connections{direction="out",state="up"}') (its relays)"
echo "  relay1's outgoing connections: $(metric relay1 'choreo_connections{direction="out",state="up"}') (every member)"

say "db1: choreo set maintenance --reason 'schema upgrade'"
t=$(date +%s%N)
ctl db1 set maintenance --reason "schema upgrade"
until_true 30 all_serving Maintenance
echo "  all $webs webservers serve the holding page $(ms_since "$t") ms after the command"

say "db1: choreo set ready"
t=$(date +%s%N)
ctl db1 set ready
until_true 30 all_serving Welcome
echo "  all $webs webservers serve the site again $(ms_since "$t") ms after the command"

say "what the relays did"
for r in relay1 relay2; do
  echo "  $r: forwarded $(metric "$r" choreo_relay_forwarded_total) leaf messages in $(metric "$r" choreo_relay_batches_sent_total) batches; kept $(metric "$r" choreo_relay_repeats_kept_total) unchanged heartbeats back"
done
echo "  web1: received $(metric web1 choreo_messages_received_total) messages in all, $(metric web1 choreo_relay_batches_received_total) of them batches; $(metric web1 choreo_relay_duplicates_total) copies (the second relay's) dropped unread"

say "done: nobody logged into a webserver"
