# behaviours_lib.sh — shared by the behaviours_*.sh scenarios; sourced
# after lib.sh. Provides $T/record.sh, a behaviour script that writes down
# every call, and helpers to read what it wrote.
#
# record.sh appends one line per call to $T/NODE.BEHAVIOUR:
#   EVENT peer=P state=S previous=S0 reason=R matching=[NAMES] node=N/STATE
# and keeps its standard input in $T/NODE.BEHAVIOUR.stdin.K (K = 1, 2, …).
# Given an argument, it sleeps that many seconds before returning, so that
# a run overlaps with what the test does next.

export EVENTS_DIR=$T
cat > "$T/record.sh" <<'SH'
#!/bin/sh
f="$EVENTS_DIR/$CHOREO_NODE.$CHOREO_BEHAVIOUR"
k=$(( $(cat "$f.count" 2>/dev/null || echo 0) + 1 ))
echo "$k" > "$f.count"
cat > "$f.stdin.$k"
echo "$CHOREO_EVENT peer=$CHOREO_PEER state=$CHOREO_PEER_STATE previous=$CHOREO_PEER_PREVIOUS reason=$CHOREO_PEER_REASON matching=[$CHOREO_MATCHING] node=$CHOREO_NODE/$CHOREO_STATE" >> "$f"
[ -z "${1:-}" ] || sleep "$1"
SH
chmod +x "$T/record.sh"

# calls NODE BEHAVIOUR [PATTERN]: lines recorded (matching PATTERN).
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

# last_stdin NODE BEHAVIOUR: the input of its latest call.
last_stdin() {
  cat "$T/$1.$2.stdin.$(cat "$T/$1.$2.count")"
}

# behaviour NAME PEERS WHEN-OR-ON [EXTRA YAML LINES]: one behaviour entry
# running record.sh (and reverting with it when WHEN-OR-ON is a when:).
behaviour() {
  local name=$1 peers=$2 trigger=$3 extra=${4:-}
  echo "  - name: $name"
  [ -z "$peers" ] || echo "    peers: $peers"
  echo "    $trigger"
  echo "    run: [$T/record.sh]"
  case $trigger in when:*) echo "    revert: [$T/record.sh]" ;; esac
  [ -z "$extra" ] || printf '%s\n' "$extra"
}

# idle NODE: no script runs or waits on NODE now.
idle() {
  [ "$(metric "$1" choreo_scripts_running)" = 0 ] && [ "$(metric "$1" choreo_scripts_queued)" = 0 ]
}
