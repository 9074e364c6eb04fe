#!/usr/bin/env bash
# Human output escapes what peers wrote: a reason and a data value holding
# an ANSI escape (ESC[31m), a newline followed by a fake table row and a
# bidi override (U+202E) reach `status`, `peers` and `watch` as visible
# escapes (\x1b, \n, \u202e), never raw, with the table still aligned;
# `--json` keeps the exact text.
source "$(dirname "$0")/lib.sh"

p1=$(free_port); p2=$(free_port)
write_config p1 "$p1" "[web]" "[]"
write_config p2 "$p2" "[db]" "[tcp://127.0.0.1:$p1]"
start_agent p1
start_agent p2
wait_for "p1 sees p2" 10 sees p1 p2 ready

c p1 watch > "$T/watch.txt" 2>&1 &
wpid=$!
c p1 watch --json > "$T/watch.json" 2>&1 &
jpid=$!
n=0
poke() { # set p2 to a fresh state until both watchers have shown one
  n=$((n + 1))
  c p2 set "warm$n" >/dev/null &&
    wait_for "p1 sees warm$n" 5 sees p1 p2 "warm$n" &&
    grep -q warm "$T/watch.txt" && grep -q warm "$T/watch.json"
}
wait_for "both watchers are live" 15 poke

ESC=$'\033'
RLO=$'\xe2\x80\xae'
R="red ${ESC}[31malert${ESC}[0m"$'\n'"web9  web  ready  1s ago  fake row ${RLO}gnp.exe"
D="v${ESC}]0;title${ESC}\\"$'\n'"x=${RLO}1"
c p2 set evil --reason "$R" --data "note=$D" || fail "set with hostile text"
wait_for "p1 sees p2 evil" 10 sees p1 p2 evil
wait_for "watch shows evil" 10 grep -q "evil" "$T/watch.txt"
wait_for "watch --json shows evil" 10 grep -q '"evil"' "$T/watch.json"
kill "$wpid" "$jpid" 2>/dev/null; wait "$wpid" "$jpid" 2>/dev/null

c p1 status > "$T/status.txt" || fail "status"
c p1 peers > "$T/peers.txt" || fail "peers"

for f in status peers watch; do
  out="$T/$f.txt"
  LC_ALL=C grep -q "$ESC" "$out" && fail "$f shows a raw ESC: $(cat -v "$out")"
  LC_ALL=C grep -q "$RLO" "$out" && fail "$f shows a raw U+202E: $(cat -v "$out")"
  grep -q "^web9" "$out" && fail "$f shows the fake row: $(cat -v "$out")"
  grep -qF 'red \x1b[31malert\x1b[0m\nweb9  web  ready  1s ago  fake row \u202egnp.exe' "$out" ||
    fail "$f lacks the escaped reason: $(cat -v "$out")"
done
for f in status peers; do
  grep -qF 'note=v\x1b]0;title\x1b\\nx=\u202e1' "$T/$f.txt" || fail "$f lacks the escaped data: $(cat -v "$T/$f.txt")"
done
[ "$(grep -c . "$T/status.txt")" = 3 ] || fail "status has other than a header and 2 rows: $(cat -v "$T/status.txt")"
[ "$(grep -c . "$T/peers.txt")" = 2 ] || fail "peers has other than a header and 1 row: $(cat -v "$T/peers.txt")"
[ "$(grep -c -- "-> evil" "$T/watch.txt")" = 1 ] || fail "watch: $(cat -v "$T/watch.txt")"
grep -qvE '^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}  ' "$T/watch.txt" && fail "watch has a line that is not an event: $(cat -v "$T/watch.txt")"
ok "status, peers and watch show ESC, newlines and U+202E as escapes, one line per row"

# Columns line up: every row's STATE and DATA start where their headers do.
for f in status peers; do
  awk -v f="$f" '
    NR == 1 { s = index($0, "STATE"); d = index($0, "DATA"); next }
    {
      st = substr($0, s); sub(/ .*/, "", st)
      if (st !~ /^(ready|evil)$/) { print f ": STATE column at " s ": " $0; bad = 1 }
      if (substr($0, d - 2, 3) !~ /^  [^ ]$/) { print f ": DATA column at " d ": " $0; bad = 1 }
    }
    END { exit bad }' "$T/$f.txt" || fail "$f is misaligned: $(cat -v "$T/$f.txt")"
done
ok "the table stays aligned"

c p1 status --json | jq -e --arg r "$R" --arg d "$D" \
  '.peers[] | select(.name == "p2") | .reason == $r and .data.note == $d' >/dev/null ||
  fail "status --json does not keep the exact text: $(c p1 status --json | cat -v)"
c p1 peers --json | jq -e --arg r "$R" '.[] | select(.name == "p2") | .reason == $r' >/dev/null ||
  fail "peers --json does not keep the exact text"
jq -e --arg r "$R" 'select(.state == "evil") | .reason == $r' "$T/watch.json" >/dev/null ||
  fail "watch --json does not keep the exact text: $(cat -v "$T/watch.json")"
ok "--json keeps the exact text"
