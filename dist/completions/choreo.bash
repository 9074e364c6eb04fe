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
    leave force-leave reload metrics version"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
    return
  fi
  cmd=${COMP_WORDS[1]}
  case $prev in
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
    *) opts=$common ;;
  esac
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -F _choreo choreo
