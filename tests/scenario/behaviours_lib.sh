# behaviours_lib.sh — shared by the behaviours_*.sh scenarios; sourced
# after lib.sh. Installs lib.sh's recorder ($T/record.sh, read with calls,
# has_calls, expect_calls, last_call and last_stdin; see install_recorder
# in lib.sh for what it writes) and adds helpers to declare behaviours that
# run it and to wait for the scripts to finish.

install_recorder

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
