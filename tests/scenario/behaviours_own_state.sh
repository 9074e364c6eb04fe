#!/usr/bin/env bash
# Own state (docs/CONFIGURATION.md "Own state"): a check that falls (fall:
# 2) and rises (rise: 2) sets this node's state to its `state` and back,
# seen by peers; a declared state other than ready beats a failing check,
# which beats a behaviour's `state`; among behaviours the first in file
# order wins; and status shows the winner's reason, here and on the peers.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/behaviours_lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s

# The check fails while $T/unhealthy exists, and writes down each result.
cat > "$T/health.sh" <<'SH'
#!/bin/sh
if [ -e "$EVENTS_DIR/unhealthy" ]; then echo fail >> "$EVENTS_DIR/health.log"; exit 1; fi
echo pass >> "$EVENTS_DIR/health.log"
SH
chmod +x "$T/health.sh"

extra="checks:
  - name: health
    run: [$T/health.sh]
    interval: 100ms
    timeout: 90ms
    fall: 2
    rise: 2
    state: sick
behaviours:
$(behaviour claim '{group: db}' 'when: {any: maintenance}' '    state: degraded')
$(behaviour claim-too '{group: db}' 'when: {any: [maintenance, draining]}' '    state: busy')"

pdb=$(free_port); pw=$(free_port)
write_config db1 "$pdb" "[db]" "[]"
write_config web1 "$pw" "[web]" "[tcp://127.0.0.1:$pdb]" "$extra"
start_agent db1
start_agent web1
wait_for "db1 sees web1 ready" 10 sees db1 web1 ready

# reason_seen VIEWER PEER: the reason VIEWER shows for PEER.
reason_seen() {
  c "$1" status --json | jq -r --arg p "$2" '([.node] + .peers)[] | select(.name == $p) | .reason'
}
shows() { # shows STATE REASON: web1 shows it, and db1 sees it
  sees web1 web1 "$1" && sees db1 web1 "$1" &&
    [ "$(reason_seen web1 web1)" = "$2" ] && [ "$(reason_seen db1 web1)" = "$2" ]
}

# ---- a check falls after 2 failures and rises after 2 passes.
touch "$T/unhealthy"
wait_for "web1 is sick, seen by db1" 5 shows sick "check health failing"
fails=$(grep -c fail "$T/health.log")
[ "$fails" -ge 2 ] || fail "sick after $fails failure(s) (fall: 2)"
: > "$T/health.log"
rm "$T/unhealthy"
wait_for "web1 is ready again, seen by db1" 5 shows ready ""
passes=$(grep -c pass "$T/health.log")
[ "$passes" -ge 2 ] || fail "ready after $passes pass(es) (rise: 2)"
ok "a check falls after $fails failures and rises after $passes passes (fall 2, rise 2); peers see both"

# ---- precedence, each winner with its reason.
c db1 set draining || fail "set db1 draining"
wait_for "claim-too's state" 5 shows busy "behaviour claim-too"
c db1 set maintenance || fail "set db1 maintenance"
wait_for "the first behaviour in file order wins" 5 shows degraded "behaviour claim"
touch "$T/unhealthy"
wait_for "a failing check beats a behaviour" 5 shows sick "check health failing"
c web1 set draining --reason "by hand" || fail "set web1 draining"
wait_for "a declared state beats a failing check" 5 shows draining "by hand"
c web1 set ready --reason "back" || fail "set web1 ready"
wait_for "declared ready: the check wins again" 5 shows sick "check health failing"
rm "$T/unhealthy"
wait_for "the check passes: the behaviour wins again" 5 shows degraded "behaviour claim"
c db1 set ready || fail "set db1 ready"
wait_for "nothing claims: ready" 5 shows ready "back"
ok "own state: declared beats a failing check beats a behaviour (first in file order); status and peers show the winner's reason"

# The behaviour's script saw this node's state as it was when it ran.
grep -q "^run peer=db1 state=maintenance .* node=web1/busy$" "$T/web1.claim" ||
  fail "claim's CHOREO_STATE: $(cat "$T/web1.claim")"
ok "a behaviour script gets this node's state in CHOREO_STATE"
