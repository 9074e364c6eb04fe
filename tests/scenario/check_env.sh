#!/usr/bin/env bash
# choreo check refuses what the agent would refuse at start on this
# machine, beyond the file itself: a listen address that is neither an
# address nor an interface of this machine, an ipc socket in a directory
# that does not exist, a state_dir or control socket that can't be
# created. Each time the agent is shown to refuse it too (exit 1), and
# the same file with the problem fixed passes both.
source "$(dirname "$0")/lib.sh"

conf() { # conf LISTEN STATE_DIR SOCKET
  cat > "$T/c.yaml" <<YAML
node: {name: n1}
network: {listen: "$1", insecure: true}
control: {socket: $3}
state_dir: $2
YAML
}

refused() { # refused WHAT PATTERN: check exits 2 naming it; the agent exits 1
  local out rc
  out=$("$CHOREO_BIN" check -c "$T/c.yaml" 2>&1); rc=$?
  [ "$rc" = 2 ] || fail "$1: check exits $rc: $out"
  echo "$out" | grep -q -- "^$T/c.yaml: $2" || fail "$1: check says: $out"
  # nanomsg leaks its half-made endpoint when a bind fails; the agent
  # exits at once then, so a sanitizer build is told not to count it.
  ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
    timeout 10 "$CHOREO_BIN" agent -c "$T/c.yaml" > "$T/agent.log" 2>&1; rc=$?
  [ "$rc" = 1 ] || fail "$1: the agent exits $rc, not 1: $(cat "$T/agent.log")"
}

port=$(free_port)
touch "$T/file"
conf "tcp://no-such-interface0:$port" "$T/st" "$T/c.sock"
refused "an unknown interface" "network.listen: tcp://no-such-interface0:$port: \"no-such-interface0\" is neither an address of this machine nor one of its interfaces"
conf "tcp://192.0.2.1:$port" "$T/st" "$T/c.sock"
refused "an address of another machine" "network.listen: tcp://192.0.2.1:$port: "
conf "ipc://$T/none/x.sock" "$T/st" "$T/c.sock"
refused "an ipc socket in a missing directory" "network.listen: ipc://$T/none/x.sock: directory $T/none does not exist"
conf "tcp://127.0.0.1:$port" "$T/file/st" "$T/c.sock"
refused "a state_dir under a file" "state_dir: $T/file/st: Not a directory"
conf "tcp://127.0.0.1:$port" "$T/st" "$T/file/c.sock"
refused "a control socket under a file" "control.socket: $T/file/c.sock: $T/file: not a directory"
conf "tcp://127.0.0.1:$port" "$T/st" "$T/run/c.sock"
"$CHOREO_BIN" check -c "$T/c.yaml" > /dev/null || fail "a good file is refused"
conf "tcp://lo:$port" "$T/st" "$T/run/c.sock"
"$CHOREO_BIN" check -c "$T/c.yaml" > /dev/null || fail "an interface name is refused"
ok "check refuses an unusable listen address, state_dir or control socket, as the agent does; good ones pass"
