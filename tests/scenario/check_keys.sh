#!/usr/bin/env bash
# choreo check refuses what the agent refuses: a network.key_file that is
# missing, unreadable, not a key file or holds a bad key is reported as
# FILE:LINE:COL: network.key_file: ... with exit 2, by check and by the
# agent at start (which then exits 2 too); the key text is never quoted.
source "$(dirname "$0")/lib.sh"

p=$(free_port)
key=$("$CHOREO_BIN" keygen)
conf() { # conf KEYFILE: a configuration using KEYFILE
  cat > "$T/k.yaml" <<YAML
node: {name: k}
network:
  listen: tcp://127.0.0.1:$p
  key_file: $1
control: {socket: $T/k.sock}
state_dir: $T/k.state
YAML
}

expect_refused() { # expect_refused WHAT PATTERN
  local what=$1 pattern=$2 out rc
  out=$("$CHOREO_BIN" check -c "$T/k.yaml" 2>&1); rc=$?
  [ "$rc" = 2 ] || fail "check with $what: exit $rc: $out"
  echo "$out" | grep -q "^$T/k.yaml:4:13: network.key_file: $pattern" || fail "check with $what: $out"
  echo "$out" | grep -q "c2VjcmV0" && fail "check quotes the key file: $out"
  out=$(timeout 20 "$CHOREO_BIN" agent -c "$T/k.yaml" 2>&1); rc=$?
  [ "$rc" = 2 ] || fail "agent with $what: exit $rc: $out"
  echo "$out" | grep -q "^$T/k.yaml:4:13: network.key_file: $pattern" || fail "agent with $what: $out"
}

conf "$T/missing.key"
expect_refused "a missing key file" "$T/missing.key: cannot open: No such file or directory"
ok "a missing key file: check and agent exit 2 with FILE:LINE:COL"

printf '%s\n# old:\nc2VjcmV0\n' "$key" > "$T/bad.key"; chmod 600 "$T/bad.key"
conf "$T/bad.key"
expect_refused "a bad key line" "$T/bad.key:3: not a base64-encoded 32-byte key"
ok "a garbage key line: check and agent exit 2, naming the line, not quoting it"

printf '# nothing but comments\n\n' > "$T/empty.key"; chmod 600 "$T/empty.key"
conf "$T/empty.key"
expect_refused "no key at all" "$T/empty.key"
mkdir "$T/dir.key"
conf "$T/dir.key"
expect_refused "a directory" "$T/dir.key: not a regular file"
ok "a key file without keys or that is a directory is refused the same way"

printf '%s\n' "$key" > "$T/good.key"; chmod 600 "$T/good.key"
conf "$T/good.key"
"$CHOREO_BIN" check -c "$T/k.yaml" >"$T/out" 2>&1 || fail "check with a good key: $(cat "$T/out")"
start_agent k
c k status --json | jq -e '.node.name == "k"' >/dev/null || fail "agent with a good key"
ok "a valid key file passes check and the agent starts"
