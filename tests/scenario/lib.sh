# lib.sh — shared by the scenario tests: start real agents on loopback in a
# temporary directory, drive them only through the `choreo` CLI, and wait
# for conditions by polling with a deadline. Sourced, not run.
#
# Every test gets $T (its directory, removed at exit unless the test failed
# or $KEEP_TEST_DIR is set), $CHOREO_BIN, $CHOREO_SRC and these functions,
# each documented where it is defined:
#   fail MESSAGE, ok MESSAGE     the check lines scripts/count-tests.py counts
#   free_port                    a TCP port nothing listens on
#   write_config, start_agent, kill_agent, c NAME COMMAND...
#   wait_for DESCRIPTION SECONDS COMMAND...
#   state_seen, sees, members, has_members, metric, settled, accepted_beyond
#   count_lines, has_lines
#   install_recorder ($T/record.sh) and its readers calls, has_calls,
#   expect_calls, last_call, last_stdin
# Agents started with start_agent are killed at exit.

set -u
: "${CHOREO_BIN:?CHOREO_BIN must point at the choreo binary}"
CHOREO_SRC=${CHOREO_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

T=$(mktemp -d /tmp/choreo-test.XXXXXX)
declare -A AGENT_PID=()
FAILED=0

cleanup() {
  local name
  for name in "${!AGENT_PID[@]}"; do
    kill -9 "${AGENT_PID[$name]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "$FAILED" -ne 0 ] || [ -n "${KEEP_TEST_DIR:-}" ]; then
    echo "# test directory kept: $T" >&2
    for f in "$T"/*.log; do
      [ -f "$f" ] || continue
      echo "# ---- $f (last 40 lines)" >&2
      tail -n 40 "$f" >&2
    done
  else
    rm -rf "$T"
  fi
}
trap cleanup EXIT

# fail MESSAGE: print "FAIL: MESSAGE" and end the test with status 1.
fail() {
  echo "FAIL: $*" >&2
  FAILED=1
  exit 1
}

# ok MESSAGE: print "ok - MESSAGE", one passed check.
ok() { echo "ok - $*"; }

# A TCP port on 127.0.0.1 that nothing listens on now, below the kernel's
# ephemeral range (32768 up) so that no agent's outgoing connection can
# take it before the agent that wants it binds it.
# Ports handed out in this test are remembered (in $T, since callers
# run free_port in a subshell) and never handed out twice: two agents of
# one test started later would otherwise collide.
free_port() {
  free_ports 1
}

# free_ports N: the first of N consecutive loopback ports that are all
# free and none handed out before, for a program that takes a base port
# (examples/fleet/run.sh's BASE_PORT).
free_ports() {
  local n=$1 p k
  for _ in $(seq 1 200); do
    p=$((10000 + RANDOM % (22000 - n)))
    for ((k = p; k < p + n; k++)); do
      grep -qx "$k" "$T/.ports" 2>/dev/null && break
      (exec 3<>"/dev/tcp/127.0.0.1/$k") 2>/dev/null && break
    done
    if [ "$k" = $((p + n)) ]; then
      seq "$p" $((p + n - 1)) >> "$T/.ports"
      echo "$p"
      return 0
    fi
  done
  return 1
}

# c NAME COMMAND [ARG]...: the choreo CLI against node NAME's socket.
c() {
  local name=$1 cmd=$2
  shift 2
  "$CHOREO_BIN" "$cmd" --socket "$T/$name.sock" "$@"
}

# Write a configuration for node NAME: write_config NAME PORT GROUPS JOIN
# [extra YAML appended]. GROUPS like "[web]", JOIN like "[tcp://...]" or "[]".
# $NODE_EXTRA, if set, is added under node: (e.g. "  data: {k: v}"), and
# $NET_EXTRA under network: (e.g. "  relay: true"); $HEARTBEAT and
# $LOST_AFTER set network.heartbeat and network.lost_after (default 200ms
# and 1s).
write_config() {
  local name=$1 port=$2 groups=$3 join=$4 extra=${5:-}
  cat > "$T/$name.yaml" <<YAML
node:
  name: $name
  cluster: test
  groups: $groups
${NODE_EXTRA:-}
network:
  listen: tcp://127.0.0.1:$port
  join: $join
  heartbeat: ${HEARTBEAT:-200ms}
  lost_after: ${LOST_AFTER:-1s}
${NET_EXTRA:-}
control:
  socket: $T/$name.sock
  mode: "0600"
state_dir: $T/$name.state
$extra
YAML
  [ -z "${CHOREO_TEST_IDENTITY:-}" ] || identity_section "$name" "$groups"
}

# With CHOREO_TEST_IDENTITY=1 every configuration write_config makes gets
# an identity section (required: true): a key for the node, a
# certificate for its groups from one operator key of the test. The
# scenario_identity_* tests run other scenarios this way.
identity_section() {
  local name=$1 groups
  groups=$(tr -d '[] ' <<<"$2")
  if [ ! -f "$T/.op.key" ]; then
    (umask 077 && "$CHOREO_BIN" keygen --signing > "$T/.op.key") || fail "keygen --signing"
  fi
  [ -f "$T/.$name.sk" ] || (umask 077 && "$CHOREO_BIN" keygen --signing > "$T/.$name.sk") ||
    fail "keygen --signing"
  "$CHOREO_BIN" cert issue --operator-key "$T/.op.key" --node "$name" --groups "$groups" \
    --public "$("$CHOREO_BIN" pubkey "$T/.$name.sk")" > "$T/.$name.cert" || fail "cert issue $name"
  cat >> "$T/$name.yaml" <<YAML
identity:
  key_file: $T/.$name.sk
  cert_file: $T/.$name.cert
  operators: [$("$CHOREO_BIN" pubkey "$T/.op.key")]
  required: true
YAML
}

# start_agent NAME: run `choreo agent -c $T/NAME.yaml` in the background,
# its output appended to $T/NAME.log, and wait until it answers.
start_agent() {
  local name=$1
  "$CHOREO_BIN" agent -c "$T/$name.yaml" >>"$T/$name.log" 2>&1 &
  AGENT_PID[$name]=$!
  wait_for "$name answers on its socket" 10 c "$name" status --json
}

# kill_agent NAME [SIGNAL]: send SIGNAL (default KILL) and reap it.
kill_agent() {
  local name=$1 sig=${2:-KILL}
  kill -"$sig" "${AGENT_PID[$name]}" 2>/dev/null || true
  wait "${AGENT_PID[$name]}" 2>/dev/null || true
  unset "AGENT_PID[$name]"
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND every 20 ms until it
# succeeds; fail the test at the deadline.
wait_for() {
  local what=$1 secs=$2
  shift 2
  local deadline=$(($(date +%s%N) + secs * 1000000000))
  while :; do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    if [ "$(date +%s%N)" -ge "$deadline" ]; then
      fail "timed out after ${secs}s waiting for: $what"
    fi
    sleep 0.02
  done
}

# The state node VIEWER shows for PEER ("" if unknown).
state_seen() {
  local viewer=$1 peer=$2
  c "$viewer" status --json 2>/dev/null |
    jq -r --arg p "$peer" '([.node] + .peers)[] | select(.name == $p) | .state'
}

# sees VIEWER PEER STATE: succeeds when VIEWER shows PEER in STATE.
sees() {
  [ "$(state_seen "$1" "$2")" = "$3" ]
}

# members VIEWER: how many nodes VIEWER shows, itself included.
members() {
  c "$1" status --json 2>/dev/null | jq '.peers | length + 1'
}

# has_members VIEWER N: VIEWER shows exactly N nodes, itself included.
has_members() {
  [ "$(members "$1")" = "$2" ]
}

# count_lines FILE PATTERN: lines of FILE matching PATTERN (0 if none).
count_lines() {
  [ -f "$1" ] || { echo 0; return; }
  grep -c -- "$2" "$1" || true
}

# elapsed_since NS MS: at least MS ms have passed since NS (date +%s%N).
elapsed_since() {
  [ $((($(date +%s%N) - $1) / 1000000)) -ge "$2" ]
}

# has_lines FILE PATTERN N: exactly N lines of FILE match PATTERN.
has_lines() {
  [ "$(count_lines "$1" "$2")" = "$3" ]
}

# metric NODE METRIC: the value of METRIC on node NODE, as `choreo metrics`
# prints it; METRIC includes its labels if it has any, e.g.
# 'choreo_connections{direction="out",state="up"}'. Empty if NODE has none.
metric() {
  local name=$1 metric=$2
  c "$name" metrics | awk -v m="$metric" '$1 == m { print $2 }'
}

# settled VIEWER [N]: wait (up to 20 s) until VIEWER has accepted N more
# messages (default 3) than it had when called, counted by its
# choreo_messages_accepted_total, so that whatever its peers sent before
# has certainly been handled. Use it before checking that nothing (more)
# happened.
settled() {
  local viewer=$1 n=${2:-3}
  local before
  before=$(metric "$viewer" choreo_messages_accepted_total)
  wait_for "$n more messages on $viewer" 20 accepted_beyond "$viewer" "$((before + n))"
}

# accepted_beyond NODE N: NODE has accepted at least N messages.
accepted_beyond() {
  local v
  v=$(metric "$1" choreo_messages_accepted_total)
  [ -n "$v" ] && [ "$v" -ge "$2" ]
}

# ---- Other versions of choreo

# build_at COMMIT DIR: the choreo binary of the repository's COMMIT, built
# (release) into DIR/build/choreo unless it is there from an earlier run.
# Callers hold a lock (flock) around it: meson runs tests in parallel.
build_at() {
  local commit=$1 dir=$2
  [ ! -x "$dir/build/choreo" ] || return 0
  rm -rf "$dir"
  mkdir -p "$dir/src"
  git -C "$CHOREO_SRC" archive "$commit" | tar -x -C "$dir/src" ||
    fail "cannot extract $commit from the repository at $CHOREO_SRC"
  meson setup --buildtype=release "$dir/build" "$dir/src" >"$T/build-$commit.log" 2>&1 &&
    ninja -C "$dir/build" choreo >>"$T/build-$commit.log" 2>&1 ||
    fail "cannot build $commit: $(tail -n 20 "$T/build-$commit.log")"
}

# run_as BIN NAME: start_agent with another binary.
run_as() {
  local bin=$1 name=$2
  "$bin" agent -c "$T/$name.yaml" >>"$T/$name.log" 2>&1 &
  AGENT_PID[$name]=$!
  wait_for "$name answers on its socket" 10 c "$name" status --json
}

# peer_field VIEWER PEER FIELD: FIELD of PEER in VIEWER's `peers --json`.
peer_field() {
  c "$1" peers --json 2>/dev/null | jq -c --arg p "$2" --arg f "$3" '.[] | select(.name == $p) | .[$f]'
}
# shows VIEWER PEER FIELD JSON: PEER's FIELD is JSON there.
shows() { [ "$(peer_field "$1" "$2" "$3")" = "$4" ]; }

# ---- Relays

# all_have N VIEWER...: wait until every VIEWER shows N nodes.
all_have() {
  local n=$1 v
  shift
  for v in "$@"; do wait_for "$v sees $n members" 20 has_members "$v" "$n"; done
}

# share RELAY: the members of its share (0 while it forwards to everyone).
share() { metric "$1" choreo_relay_share_members; }
# split_on RELAY: it forwards to its share only.
split_on() { local v; v=$(share "$1"); [ -n "$v" ] && [ "$v" -gt 0 ]; }

# served_by RELAY ALIVE LEAVES: those of LEAVES (space separated) RELAY
# serves when the relays ALIVE (space separated, RELAY among them) are
# alive: those for which it is among the two of highest rank, the rank
# being policy_share_rank() of agent/policy.c (FNV-1a of
# "relay\0member\0", then splitmix64's finalizer; ties to the smaller
# name). Computed here independently of the agents.
served_by() {
  python3 - "$@" <<'PY'
import sys
M = (1 << 64) - 1
def fnv(h, b):
    for x in b:
        h ^= x
        h = (h * 0x100000001b3) & M
    return h
def rank(relay, member):
    h = fnv(0xcbf29ce484222325, relay.encode() + b"\0")
    h = fnv(h, member.encode() + b"\0")
    h ^= h >> 30; h = (h * 0xbf58476d1ce4e5b9) & M
    h ^= h >> 27; h = (h * 0x94d049bb133111eb) & M
    return h ^ (h >> 31)
me, alive, leaves = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
for leaf in leaves:
    if me in sorted(alive, key=lambda r: (-rank(r, leaf), r))[:2]:
        print(leaf)
PY
}
expected_served() { served_by "$@" | wc -l; }

# ---- The recorder: one behaviour script for every test that needs to know
# what ran. install_recorder writes $T/record.sh and exports EVENTS_DIR=$T,
# which the script finds in its environment (the agent passes its own
# environment on). Each call of record.sh on node NODE for behaviour
# BEHAVIOUR appends one line to $T/NODE.BEHAVIOUR:
#   EVENT peer=P state=S previous=S0 reason=R matching=[NAMES] node=N/STATE
# (from CHOREO_EVENT, CHOREO_PEER, CHOREO_PEER_STATE, CHOREO_PEER_PREVIOUS,
# CHOREO_PEER_REASON, CHOREO_MATCHING, CHOREO_NODE and CHOREO_STATE),
# followed by " args=[ARGS]" when the behaviour's run: or revert: list
# gives it arguments. It keeps its standard input in
# $T/NODE.BEHAVIOUR.stdin.K (K = 1, 2, ...) and the number of calls in
# $T/NODE.BEHAVIOUR.count. When its first argument is a
# number, it sleeps that many seconds before returning, so that a run
# overlaps with what the test does next. Match lines with patterns such
# as "^run peer=db1 ".
install_recorder() {
  export EVENTS_DIR=$T
  cat > "$T/record.sh" <<'SH'
#!/bin/sh
f="$EVENTS_DIR/$CHOREO_NODE.$CHOREO_BEHAVIOUR"
k=$(( $(cat "$f.count" 2>/dev/null || echo 0) + 1 ))
echo "$k" > "$f.count"
cat > "$f.stdin.$k"
echo "$CHOREO_EVENT peer=$CHOREO_PEER state=$CHOREO_PEER_STATE previous=$CHOREO_PEER_PREVIOUS reason=$CHOREO_PEER_REASON matching=[$CHOREO_MATCHING] node=$CHOREO_NODE/$CHOREO_STATE${1+ args=[$*]}" >> "$f"
case ${1:-} in '' | *[!0-9.]*) ;; *) sleep "$1" ;; esac
SH
  chmod +x "$T/record.sh"
}

# calls NODE BEHAVIOUR [PATTERN]: how many lines record.sh wrote for
# BEHAVIOUR on NODE (those matching PATTERN; 0 if it never ran).
calls() {
  count_lines "$T/$1.$2" "${3:-}"
}

# has_calls NODE BEHAVIOUR PATTERN N: exactly N recorded lines match.
has_calls() {
  [ "$(calls "$1" "$2" "$3")" = "$4" ]
}

# expect_calls NODE BEHAVIOUR N: fail unless exactly N calls were recorded.
expect_calls() {
  local n
  n=$(calls "$1" "$2")
  [ "$n" = "$3" ] || fail "$1's $2 ran $n times, expected $3: $(cat "$T/$1.$2" 2>/dev/null)"
}

# last_call NODE BEHAVIOUR: the event of its latest call (run, revert,
# change...; empty if it never ran).
last_call() {
  [ -f "$T/$1.$2" ] || return 0
  tail -n 1 "$T/$1.$2" | cut -d ' ' -f 1
}

# last_stdin NODE BEHAVIOUR: the input of its latest call.
last_stdin() {
  cat "$T/$1.$2.stdin.$(cat "$T/$1.$2.count")"
}
