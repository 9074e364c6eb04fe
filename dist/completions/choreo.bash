# bash completion for choreo(1). Node and group names come from the
# running agent (choreo status --json), so they complete only where an
# agent answers; nothing else is run.

_choreo_nodes() {
  choreo status --json 2>/dev/null |
    grep -o '"name":"[^"]*"' | cut -d'"' -f4
}

_choreo_groups() {
  choreo status --json 2>/dev/null |
    grep -o '"groups":\[[^]]*\]' | grep -o '"[^"]*"' | grep -v groups |
    tr -d '"' | sort -u
}

_choreo() {
  local cur prev cmd
  COMPREPLY=()
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  local commands="agent check set status peers watch wait run-in keygen
    pubkey cert revoke leave force-leave reload metrics version"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
    return
  fi
  cmd=${COMP_WORDS[1]}
  if [ "$cmd" = cert ] && [ "$COMP_CWORD" -eq 2 ]; then
    COMPREPLY=($(compgen -W "issue show revoke --help" -- "$cur"))
    return
  fi
  case $prev in
    -k | --operator-key | -p | --public | -o | --operator)
      COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --groups | --days | --not-before | --not-after) return ;;
    -c | --config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    -s | --socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    -n | --node) COMPREPLY=($(compgen -W "$(_choreo_nodes)" -- "$cur")); return ;;
    -g | --group) COMPREPLY=($(compgen -W "$(_choreo_groups)" -- "$cur")); return ;;
    -e | --event)
      COMPREPLY=($(compgen -W "joined state data left lost snapshot" -- "$cur"))
      return ;;
    -t | --timeout | --for | -r | --reason | -d | --data | --state) return ;;
  esac
  local common="--socket --config --help"
  local opts
  case $cmd in
    agent) opts="--config --help" ;;
    check) opts="--config --quiet --help" ;;
    set) opts="--reason --data --for $common" ;;
    run-in) opts="--reason $common" ;;
    status) opts="--json $common" ;;
    peers) opts="--group --json $common" ;;
    watch) opts="--node --group --event --snapshot --json $common" ;;
    wait) opts="--node --group --any --all --state --timeout $common" ;;
    force-leave)
      opts="--force $common"
      if [[ $cur != -* ]]; then
        COMPREPLY=($(compgen -W "$(_choreo_nodes)" -- "$cur"))
        return
      fi ;;
    keygen) opts="--signing --help" ;;
    pubkey) opts="--help" ;;
    revoke) opts=$common ;;
    cert)
      case ${COMP_WORDS[2]} in
        issue) opts="--operator-key --node --groups --public --days --not-before --not-after --help" ;;
        show) opts="--json --operator --help" ;;
        revoke) opts="--operator-key --help" ;;
      esac ;;
    *) opts=$common ;;
  esac
  case $cmd in
    pubkey | revoke | cert)
      if [[ $cur != -* ]] && [ "$COMP_CWORD" -gt 2 -o "$cmd" != cert ]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        return
      fi ;;
  esac
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -F _choreo choreo
