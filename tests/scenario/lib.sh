# lib.sh — shared by the scenario tests: start real agents on loopback in a
# temporary directory, drive them only through the `choreo` CLI, and wait
# for conditions by polling with a deadline. Sourced, not run.
#
# Every test gets: $T (its directory, removed at exit), $CHOREO_BIN, and
# these functions. Agents started with start_agent are killed at exit.

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

fail() {
  echo "FAIL: $*" >&2
  FAILED=1
  exit 1
}

ok() { echo "ok - $*"; }

# A TCP port on 127.0.0.1 that nothing listens on now, below the kernel's
# ephemeral range (32768 up) so that no agent's outgoing connection can
# take it before the agent that wants it binds it.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((10000 + RANDOM % 22000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
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
# $NET_EXTRA under network: (e.g. "  relay: true").
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
}

start_agent() {
  local name=$1
  "$CHOREO_BIN" agent -c "$T/$name.yaml" >>"$T/$name.log" 2>&1 &
  AGENT_PID[$name]=$!
  wait_for "$name answers on its socket" 10 c "$name" status --json
}

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

has_members() {
  [ "$(members "$1")" = "$2" ]
}

# count_lines FILE PATTERN: lines of FILE matching PATTERN (0 if none).
count_lines() {
  [ -f "$1" ] || { echo 0; return; }
  grep -c -- "$2" "$1" || true
}

has_lines() {
  [ "$(count_lines "$1" "$2")" = "$3" ]
}

# metric NAME [LABELS]: the value of a metric on node NAME.
metric() {
  local name=$1 metric=$2
  c "$name" metrics | awk -v m="$metric" '$1 == m { print $2 }'
}

# heartbeats_pass VIEWER PEER N: wait until VIEWER has heard PEER's
# heartbeat N more times (its last_seen went back to near 0 N times), so
# that anything PEER sent before has certainly been handled.
settled() {
  local viewer=$1 n=${2:-3}
  local before
  before=$(metric "$viewer" choreo_messages_accepted_total)
  wait_for "$n more messages on $viewer" 20 accepted_beyond "$viewer" "$((before + n))"
}

accepted_beyond() {
  local v
  v=$(metric "$1" choreo_messages_accepted_total)
  [ -n "$v" ] && [ "$v" -ge "$2" ]
}
