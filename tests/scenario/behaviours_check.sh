#!/usr/bin/env bash
# `choreo check` on bad behaviours: each problem is one FILE:LINE:COL line
# (in the file that holds it, a pack included), all of them in one pass,
# and the exit status is 2. A file the agent is given is refused alike.
source "$(dirname "$0")/lib.sh"

printf '#!/bin/sh\n' > "$T/ok.sh"
chmod +x "$T/ok.sh"
printf '#!/bin/sh\n' > "$T/not-executable.sh"
chmod -x "$T/not-executable.sh"

mkdir -p "$T/pack"
cat > "$T/pack/pack.yaml" <<'YAML'
behaviours:
  - name: from-pack
    when:
      any: ${state}
    run: [./missing-in-pack.sh]
YAML

cat > "$T/bad.yaml" <<YAML
node: {name: n1}
include:
  - file: pack/pack.yaml
    vars: {state: Ready}
behaviours:
  - name: never
    when: {fewer_than: 0, state: ready}
    run: [$T/ok.sh]
  - name: bad-group
    peers: {group: "no spaces"}
    when: {any: maintenance}
    run: [$T/ok.sh]
  - name: missing
    when: {any: maintenance}
    run: [$T/missing.sh]
  - name: not-executable
    when: {any: maintenance}
    run: [$T/ok.sh]
    revert: [$T/not-executable.sh]
  - name: never
    on: change
    run: [$T/ok.sh]
  - name: bad-state
    when: {any: [maintenance, Draining]}
    run: [$T/ok.sh]
    state: "on fire"
  - name: left-is-never-watched
    when: {all: left}
    run: [$T/ok.sh]
  - name: twice
    on: [joined, lost, joined]
    run: [$T/ok.sh]
YAML

out=$("$CHOREO_BIN" check -c "$T/bad.yaml" 2>&1); rc=$?
[ "$rc" = 2 ] || fail "check: exit $rc, expected 2: $out"
expect() { # expect LINE:COL PATTERN [FILE]
  local file=${3:-$T/bad.yaml}
  printf '%s\n' "$out" | grep -qE -- "^$file:$1: $2" ||
    fail "no line $file:$1: /$2/ in:
$out"
}
expect 7:24 "behaviours\[0\]\.when\.fewer_than: 0 can never be true"
expect 10:20 "behaviours\[1\]\.peers\.group: \"no spaces\" is not a valid name"
expect 15:11 "behaviours\[2\]\.run: $T/missing.sh: no such file"
expect 19:14 "behaviours\[3\]\.revert: $T/not-executable.sh: is not executable"
expect 20:11 "behaviours\[4\]\.name: duplicate behaviour name \"never\" \(first at $T/bad.yaml:6:5\)"
expect 24:31 "behaviours\[5\]\.when\.any: \"Draining\" is not a valid state"
expect 26:12 "behaviours\[5\]\.state: \"on fire\" is not a valid state"
expect 28:17 "behaviours\[6\]\.when\.all: \"left\" never matches: peers that left are not watched"
expect 31:24 "behaviours\[7\]\.on: \"joined\" is listed twice"
expect 4:12 "behaviours\[0\]\.when\.any: \"Ready\" is not a valid state" "$T/pack/pack.yaml"
expect 5:11 "behaviours\[0\]\.run: $T/pack/missing-in-pack.sh: no such file" "$T/pack/pack.yaml"
problems=$(printf '%s\n' "$out" | grep -c "^$T/.*:[0-9]*:[0-9]*: ")
[ "$problems" = 11 ] || fail "$problems problems reported, expected 11:
$out"
ok "choreo check: 11 problems of behaviours, each FILE:LINE:COL (the pack's in the pack), exit 2"

out=$("$CHOREO_BIN" agent -c "$T/bad.yaml" 2>&1); rc=$?
[ "$rc" = 2 ] || fail "agent with bad behaviours: exit $rc"
printf '%s\n' "$out" | grep -q "^$T/bad.yaml:7:24: " || fail "agent with bad behaviours: $out"
ok "the agent refuses the same file with the same messages (exit 2)"
