#!/bin/bash
# control_auth.sh — who may change what on the control socket
# (docs/OPERATIONS.md "Who may change what"): a member of
# control.read_group can status, peers, watch, wait, metrics and version
# but a set is refused (exit 1, "permission denied") and changes nothing;
# a user outside the group can't use the socket, whether the file's mode
# stops it or the agent's credential check does; a root set leaves an
# audit line naming uid 0 and the client's pid; the counters say it all.
# Users and a group are created for the test and removed at exit: needs
# root.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ] || ! command -v useradd >/dev/null ||
  ! command -v runuser >/dev/null; then
  echo "SKIP: needs root, useradd and runuser to create users"
  exit 77
fi

G=chtg$$            # the read group
R=chtr$$            # a reader: the group is a supplementary one
P=chtp$$            # a reader: the group is its primary one
O=chto$$            # outside the group
remove_accounts() {
  userdel "$R" 2>/dev/null
  userdel "$P" 2>/dev/null
  userdel "$O" 2>/dev/null
  groupdel "$G" 2>/dev/null
  cleanup
}
trap remove_accounts EXIT
groupadd --system "$G" || fail "groupadd $G"
useradd --system -M -s /bin/sh -G "$G" "$R" || fail "useradd $R"
useradd --system -M -s /bin/sh -g "$G" "$P" || fail "useradd $P"
useradd --system -M -s /bin/sh "$O" || fail "useradd $O"
# The socket's directory must be reachable by the users (and not writable
# by them: control_dir_check).
chmod 755 "$T"

# as USER COMMAND [ARG]...: choreo as USER against node a's socket.
as() {
  local user=$1 cmd=$2
  shift 2
  runuser -u "$user" -- "$CHOREO_BIN" "$cmd" --socket "$T/a.sock" "$@"
}

# raw USER SOCKET REQUEST: one JSON request line sent as USER; prints the
# reply line.
raw() {
  runuser -u "$1" -- python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
print(s.makefile().readline().strip())' "$2" "$3"
}

# with_read_group NAME GROUP MODE: the configuration's control section
# gets read_group and the given mode.
with_read_group() {
  sed -i -e "s/^  mode: .*/  mode: \"$3\"\n  read_group: $2/" "$T/$1.yaml"
}

# ---- an unknown group is a configuration error, FILE:LINE:COL ----
write_config bad "$(free_port)" "[web]" "[]"
with_read_group bad "nosuchgroup$$" 0660
line=$(grep -n "read_group:" "$T/bad.yaml" | cut -d: -f1)
out=$("$CHOREO_BIN" check -c "$T/bad.yaml" 2>&1)
rc=$?
[ "$rc" = 2 ] || fail "check with an unknown group exited $rc, expected 2: $out"
echo "$out" | grep -q "^$T/bad.yaml:$line:15: control.read_group: no group \"nosuchgroup$$\"" ||
  fail "check did not name the unknown group at FILE:LINE:COL: $out"
ok "an unknown control.read_group is refused at $line:15 by choreo check (exit 2)"

# ---- the socket file: the read group's, mode 0660 ----
write_config a "$(free_port)" "[web]" "[]"
with_read_group a "$G" 0660
start_agent a
[ "$(stat -c '%G %a' "$T/a.sock")" = "$G 660" ] ||
  fail "socket file is $(stat -c '%U:%G %a' "$T/a.sock"), expected group $G mode 660"
ok "the socket file belongs to the read group, mode 0660"

# ---- readers read ----
for user in "$R" "$P"; do
  out=$(as "$user" status --json 2>&1) || fail "$user: status failed: $out"
  [ "$(echo "$out" | jq -r .node.name)" = a ] || fail "$user: status said $out"
  as "$user" peers >/dev/null 2>&1 || fail "$user: peers failed"
  as "$user" metrics 2>/dev/null | grep -q '^choreo_control_access_total' ||
    fail "$user: metrics failed"
  raw "$user" "$T/a.sock" '{"cmd":"version"}' | jq -e '.ok and .version' >/dev/null ||
    fail "$user: the version request failed"
  as "$user" wait --node a --any ready --timeout 5s >/dev/null 2>&1 ||
    fail "$user: wait failed"
  timeout 2 runuser -u "$user" -- "$CHOREO_BIN" watch --snapshot --json \
    --socket "$T/a.sock" >"$T/watch.$user" 2>/dev/null
  grep -q '^{"event":"snapshot","peer":"a",' "$T/watch.$user" ||
    fail "$user: watch printed no snapshot of a: $(cat "$T/watch.$user")"
  ok "$user (read group: $( [ "$user" = "$R" ] && echo supplementary || echo primary)) can status, peers, metrics, version, wait and watch"
done

# ---- but not change ----
before=$(metric a 'choreo_control_access_total{access="denied"}')
out=$(as "$R" set maintenance --reason "not mine" 2>&1)
rc=$?
[ "$rc" = 1 ] || fail "a reader's set exited $rc, expected 1: $out"
uid=$(id -u "$R")
echo "$out" | grep -q "permission denied: uid $uid may only read (control.read_group)" ||
  fail "a reader's set said: $out"
ok "a reader's set is refused: exit 1, \"permission denied: uid $uid may only read (control.read_group)\""
for cmd in "leave" "reload" "force-leave nosuch"; do
  # shellcheck disable=SC2086
  out=$(as "$R" $cmd 2>&1) && fail "a reader's $cmd succeeded: $out"
  echo "$out" | grep -q "permission denied" || fail "a reader's $cmd said: $out"
done
ok "a reader's leave, reload and force-leave are refused too"
out=$(as "$R" run-in maintenance -- /bin/true 2>&1) && fail "a reader's run-in succeeded: $out"
ok "a reader's run-in is refused"
sees a a ready || fail "a is $(state_seen a a) after a reader's set, expected ready"
kill -0 "${AGENT_PID[a]}" || fail "the agent is gone after a reader's leave"
ok "nothing changed: a is still ready and running"
after=$(metric a 'choreo_control_access_total{access="denied"}')
[ "$after" -ge $((before + 5)) ] ||
  fail "denied went from $before to $after, expected at least 5 more (set, leave, reload, force-leave, run-in)"
grep -q "audit: refused: uid $uid ($R) pid [0-9]*: set maintenance reason \"not mine\"" "$T/a.log" ||
  fail "no audit line for the refused set: $(grep audit "$T/a.log")"
ok "refusals are counted (denied $before -> $after) and logged"

# ---- outside the group: the file's mode stops them ----
out=$(as "$O" status 2>&1) && fail "$O could use the socket: $out"
ok "a user outside the group can't connect (mode 0660: $(echo "$out" | head -1))"

# ---- root changes, and the audit line says who ----
"$CHOREO_BIN" set maintenance --reason "schema upgrade" --data ticket=42 \
  --socket "$T/a.sock" >/dev/null 2>&1 &
spid=$!
wait $spid || fail "root's set failed"
wait_for "a in maintenance" 5 sees a a maintenance
grep -q "audit: uid 0 (root) pid $spid: set maintenance reason \"schema upgrade\" data \\[ticket\\]" "$T/a.log" ||
  fail "no audit line with uid 0 and pid $spid: $(grep audit "$T/a.log")"
ok "root's set is logged: $(grep "audit: uid 0" "$T/a.log" | tail -1 | sed 's/.*audit:/audit:/')"
[ "$(metric a 'choreo_control_access_total{access="change"}')" -ge 1 ] ||
  fail "no change counted"
[ "$(metric a 'choreo_control_access_total{access="read"}')" -ge 10 ] ||
  fail "reads not counted"
ok "changes and reads are counted in choreo_control_access_total"
# Peer text never reaches the log raw.
c a set ready --reason "$(printf 'evil\033[2J\nline')" >/dev/null ||
  fail "root's set with control characters failed"
grep -q 'audit: uid 0 (root) pid [0-9]*: set ready reason "evil\\x1b\[2J\\nline"' "$T/a.log" ||
  fail "the reason was not escaped in the audit line: $(grep 'set ready' "$T/a.log" | cat -v)"
ok "the audit line escapes the client's text"
c a set draining --for 1m >/dev/null || fail "root's set --for failed"
c a force-leave nosuch >/dev/null 2>&1
grep -q 'audit: uid 0 (root) pid [0-9]*: set draining --for 60000ms$' "$T/a.log" ||
  fail "no audit line for set --for: $(grep 'audit:' "$T/a.log")"
grep -q 'audit: uid 0 (root) pid [0-9]*: force-leave nosuch force false$' "$T/a.log" ||
  fail "no audit line for force-leave: $(grep 'audit:' "$T/a.log")"
ok "set --for and force-leave are audited with their arguments"

# ---- outside the group, with a socket anyone may open: the agent refuses ----
write_config b "$(free_port)" "[web]" "[]"
with_read_group b "$G" 0666
start_agent b
out=$(runuser -u "$O" -- "$CHOREO_BIN" status --socket "$T/b.sock" 2>&1)
rc=$?
[ "$rc" = 1 ] || fail "$O on a 0666 socket exited $rc, expected 1: $out"
echo "$out" | grep -q "the agent refused the request" ||
  fail "$O on a 0666 socket was told: $out"
reply=$(raw "$O" "$T/b.sock" '{"cmd":"status"}')
[ "$reply" = '{"ok":false,"error":"permission denied: uid '"$(id -u "$O")"' may not use this socket (only root, uid 0 and members of control.read_group to read)"}' ] ||
  fail "$O on a 0666 socket got the line: $reply"
ok "outside the group on a 0666 socket: refused by the agent (exit 1; the line: $reply)"
grep -q "control: refused a connection from uid $(id -u "$O") pid [0-9]* ($O)" "$T/b.log" ||
  fail "the refused connection was not logged"
[ "$(metric b 'choreo_control_access_total{access="denied"}')" = 2 ] ||
  fail "the refused connection was not counted"
ok "the refused connection is logged and counted"
out=$(runuser -u "$R" -- "$CHOREO_BIN" status --socket "$T/b.sock" 2>&1) ||
  fail "a reader on the 0666 socket was refused: $out"
ok "a reader on the 0666 socket still reads"

# ---- without read_group, only root and the agent's user ----
write_config n "$(free_port)" "[web]" "[]"
sed -i -e 's/^  mode: .*/  mode: "0666"/' "$T/n.yaml"
start_agent n
out=$(runuser -u "$R" -- "$CHOREO_BIN" status --socket "$T/n.sock" 2>&1) &&
  fail "without read_group, $R could read: $out"
echo "$out" | grep -q "the agent refused the request" ||
  fail "without read_group, $R was told: $out"
reply=$(raw "$R" "$T/n.sock" '{"cmd":"status"}')
[ "$reply" = '{"ok":false,"error":"permission denied: uid '"$(id -u "$R")"' may not use this socket (only root, uid 0)"}' ] ||
  fail "without read_group, $R got the line: $reply"
ok "without control.read_group, other users are refused even on a 0666 socket"
