#!/usr/bin/env bash
# The control socket's directory must be trusted (docs/SECURITY.md "The
# control socket"): whoever can write to it can replace the socket and
# take the operators' requests. An agent refuses (exit 1, a clear error)
# a directory another non-root user owns or that group or others can
# write, like state_dir; its own directory, or a root-owned sticky one
# such as /tmp, is fine.
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "ok - skipped: needs root to chown to nobody"; exit 0; }
port=$(free_port)

refused() { # refused NAME DIR PATTERN: the agent exits 1 naming DIR
  local name=$1 dir=$2 pattern=$3 rc=0
  write_config "$name" "$port" "[web]" "[]"
  sed -i "s|^  socket: .*|  socket: $dir/$name.sock|" "$T/$name.yaml"
  timeout 10 "$CHOREO_BIN" agent -c "$T/$name.yaml" > "$T/$name.log" 2>&1 || rc=$?
  [ "$rc" = 1 ] || fail "$name: exit $rc, expected 1: $(cat "$T/$name.log")"
  grep -q "control.socket: $dir: $pattern" "$T/$name.log" ||
    fail "$name: no clear error: $(cat "$T/$name.log")"
  [ ! -e "$dir/$name.sock" ] || fail "$name: a socket was created in $dir"
}

mkdir "$T/nobody"
chown nobody "$T/nobody"
refused owned "$T/nobody" "owned by uid $(id -u nobody), neither root nor the agent's user"
ok "a socket directory owned by nobody is refused (exit 1, named)"

mkdir "$T/open"
chmod 0777 "$T/open"
refused open "$T/open" "group or others may write to it (mode 0777)"
ok "a socket directory of mode 0777 is refused (exit 1, named)"

mkdir "$T/group"
chmod 0775 "$T/group"
refused group "$T/group" "group or others may write to it (mode 0775)"
ok "a group-writable socket directory is refused"

# The agent's own directory, created by it when missing, is fine.
write_config good "$port" "[web]" "[]"
sed -i "s|^  socket: .*|  socket: $T/run/choreo/good.sock|" "$T/good.yaml"
"$CHOREO_BIN" agent -c "$T/good.yaml" >> "$T/good.log" 2>&1 &
AGENT_PID[good]=$!
wait_for "good answers" 10 "$CHOREO_BIN" status --socket "$T/run/choreo/good.sock"
ok "a socket directory the agent creates (0755) is accepted"
