#!/usr/bin/env bash
# A planted symlink in state_dir (docs/SECURITY.md, the local user): the
# agent writes its files through a temporary of a fresh random name
# created with O_EXCL, so a link planted where the old fixed temporary
# name was (.state.json.tmp, and the same for applied.json and
# members.json), or at the file itself, is never followed to overwrite
# what it points at; a state_dir another user could write is refused at
# start, so that only the agent's own user could plant anything.
source "$(dirname "$0")/lib.sh"
port=$(free_port)
write_config n1 "$port" "[web]" "[]"
mkdir -m 0700 "$T/n1.state"

# Files the links point at: what an attacker wants overwritten.
for f in state applied members; do
  echo "precious $f" > "$T/victim.$f"
  ln -s "$T/victim.$f" "$T/n1.state/.$f.json.tmp"
done
start_agent n1
for s in maintenance draining ready maintenance; do
  c n1 set "$s" >/dev/null || fail "set $s failed"
done
wait_for "n1 shows maintenance" 5 sees n1 n1 maintenance
for f in state applied members; do
  [ "$(cat "$T/victim.$f")" = "precious $f" ] ||
    fail "the file behind .$f.json.tmp was overwritten: $(head -c 80 "$T/victim.$f")"
  [ -L "$T/n1.state/.$f.json.tmp" ] || fail ".$f.json.tmp is no longer the planted link"
done
[ -f "$T/n1.state/state.json" ] && [ ! -L "$T/n1.state/state.json" ] ||
  fail "state.json is not a regular file"
ok "links planted at the temporaries' old names are never followed; state.json is written beside them"

# A link at state.json itself is replaced by the rename, not written
# through.
kill_agent n1
rm -f "$T/n1.state/state.json"
ln -s "$T/victim.state" "$T/n1.state/state.json"
start_agent n1
c n1 set draining >/dev/null || fail "set draining failed"
[ "$(cat "$T/victim.state")" = "precious state" ] ||
  fail "the file behind a planted state.json was overwritten"
[ ! -L "$T/n1.state/state.json" ] || fail "state.json is still a link after a save"
ok "a link planted at state.json is replaced by the save, never written through"
kill_agent n1
