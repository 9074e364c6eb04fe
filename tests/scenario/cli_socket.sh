#!/usr/bin/env bash
# Client commands given -c FILE read only control.socket from it: a
# configuration the agent would refuse for another reason (a behaviour
# whose script is missing) still leads the CLI to the agent, while choreo
# check still reports the problem. A control.socket that can't be used is
# reported as FILE:LINE:COL (exit 2), and so is a path of CONFIG_PATH_MAX
# (4096) bytes or more, for every command that takes -c.
source "$(dirname "$0")/lib.sh"

unset CHOREO_SOCKET
p=$(free_port)
write_config n1 "$p" "[db]" "[]"
start_agent n1

# The same file, plus a behaviour whose script does not exist.
cp "$T/n1.yaml" "$T/broken.yaml"
cat >> "$T/broken.yaml" <<YAML
behaviours:
  - name: gone
    on: change
    run: [$T/no-such-script.sh]
YAML
out=$("$CHOREO_BIN" check -c "$T/broken.yaml" 2>&1); rc=$?
[ "$rc" = 2 ] || fail "check of the broken file: exit $rc: $out"
echo "$out" | grep -q "^$T/broken.yaml:[0-9]*:[0-9]*: behaviours\[0\].run: $T/no-such-script.sh: no such file" ||
  fail "check does not report the missing script: $out"
out=$("$CHOREO_BIN" status -c "$T/broken.yaml" 2>&1); rc=$?
[ "$rc" = 0 ] || fail "status -c broken.yaml: exit $rc: $out"
echo "$out" | grep -qE "^n1\* +db +ready" || fail "status -c broken.yaml: $out"
"$CHOREO_BIN" set maintenance -c "$T/broken.yaml" || fail "set -c broken.yaml"
"$CHOREO_BIN" status --json -c "$T/broken.yaml" | jq -e '.node.state == "maintenance"' >/dev/null ||
  fail "set -c broken.yaml did not reach the agent"
"$CHOREO_BIN" set ready -c "$T/broken.yaml" || fail "set ready -c broken.yaml"
ok "status and set -c FILE reach the agent although FILE has a missing script; check still reports it"

# Only control.socket matters: the rest may be anything YAML.
cat > "$T/minimal.yaml" <<YAML
unknown_section: {whatever: [1, 2]}
control:
  mode: not-a-mode
  socket: $T/n1.sock
YAML
"$CHOREO_BIN" status --json -c "$T/minimal.yaml" | jq -e '.node.name == "n1"' >/dev/null ||
  fail "status -c minimal.yaml"
printf 'control:\n  socket: [a, b]\n' > "$T/badsock.yaml"
out=$("$CHOREO_BIN" status -c "$T/badsock.yaml" 2>&1); rc=$?
[ "$rc" = 2 ] || fail "status with a list as control.socket: exit $rc: $out"
echo "$out" | grep -q "^$T/badsock.yaml:2:11: control.socket: expected a string" || fail "bad socket message: $out"
printf 'control: [\n' > "$T/notyaml.yaml"
out=$("$CHOREO_BIN" peers -c "$T/notyaml.yaml" 2>&1); rc=$?
[ "$rc" = 2 ] || fail "peers -c with a YAML syntax error: exit $rc: $out"
echo "$out" | grep -q "^$T/notyaml.yaml:[0-9]*:[0-9]*: invalid YAML" || fail "syntax error message: $out"
out=$("$CHOREO_BIN" status -c "$T/absent.yaml" 2>&1); rc=$?
[ "$rc" = 2 ] || fail "status -c of a missing file: exit $rc: $out"
echo "$out" | grep -q "^$T/absent.yaml:1:1: No such file or directory" || fail "missing file message: $out"
ok "only control.socket is read; an unusable one is FILE:LINE:COL with exit 2"

# A path of CONFIG_PATH_MAX bytes or more is refused, not truncated.
long=$(printf '/%.0s' $(seq 1 4096))
for cmd in "check -c" "agent -c" "status -c" "set ready -c" "run-in maintenance -c"; do
  tail=()
  [ "${cmd#run-in}" = "$cmd" ] || tail=(-- true)
  # shellcheck disable=SC2086
  out=$("$CHOREO_BIN" $cmd "$long" "${tail[@]}" 2>&1 </dev/null); rc=$?
  [ "$rc" = 2 ] || fail "$cmd LONG: exit $rc: $out"
  echo "$out" | grep -q "longer than 4095 bytes" || fail "$cmd LONG: $out"
done
ok "a configuration path of 4096 bytes is refused by check, agent and the client commands"
