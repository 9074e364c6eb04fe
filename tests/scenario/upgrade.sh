#!/usr/bin/env bash
# A rolling upgrade from 0.1.0 (docs/OPERATIONS.md "Upgrades"), with the
# 0.1.0 binary built from the repository's history (commit b81b015) next
# to this tree:
#  - a mixed cluster (db1 and web1 on 0.1.0, web2 on this version) lives
#    the story: db1 in maintenance, both webs run `holding`, db1 ready,
#    both revert; web2 shows both old nodes as unversioned, counts their
#    messages and says so once per peer;
#  - web1 then db1 are upgraded one at a time, keeping their state_dirs:
#    0.1.0's state.json is migrated on the first start (format 1, the old
#    file kept as state.json.v0); after each step a change of db1 reaches
#    everyone and every `holding`'s last action matches db1's state;
#  - web1 is rolled back to 0.1.0 on its migrated state_dir (the backup
#    still there), and the story goes on; upgraded again while db1
#    changes, the applied.json of before the rollback, stale since 0.1.0
#    ran, is set aside (what was applied is unknown) and web1 brings
#    `holding` to the truth;
#  - agents of a test build that speaks one protocol minor more
#    (-Dproto_next=true) join: each pair speaks the highest minor both
#    know (3 between them, 2 with this version, 0 with 0.1.0), the field
#    of minor 3 is read only between them, and the story goes on; agents
#    of this version speak minor 2 with each other;
#  - messages claiming another major or only future minors, or a version
#    field of the wrong type, are dropped and counted, said once per
#    sender; a state_dir file of a newer format refuses the start (exit 1,
#    nothing written).
# The old and the proto_next builds are cached under $CHOREO_BUILD, so a
# rerun only checks they are up to date.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/behaviours_lib.sh"
: "${CHOREO_BUILD:?CHOREO_BUILD must point at the build tree}"
: "${CHOREO_TAP:?CHOREO_TAP must point at the tap test helper}"

OLD_COMMIT=b81b015
OLD=$CHOREO_BUILD/old-0.1.0
NEXT=$CHOREO_BUILD/proto-next
NEW_BIN=$CHOREO_BIN

# build_next: this tree built with -Dproto_next=true in $NEXT/choreo.
build_next() {
  if [ ! -f "$NEXT/build.ninja" ]; then
    rm -rf "$NEXT"
    meson setup --buildtype=release -Dproto_next=true "$NEXT" "$CHOREO_SRC" \
      >"$T/next-build.log" 2>&1 ||
      fail "cannot configure the proto_next build: $(tail -n 20 "$T/next-build.log")"
  fi
  ninja -C "$NEXT" choreo >>"$T/next-build.log" 2>&1 ||
    fail "cannot build the proto_next build: $(tail -n 20 "$T/next-build.log")"
}

(
  flock 9
  build_at "$OLD_COMMIT" "$OLD"
  build_next
) 9>"$CHOREO_BUILD/.upgrade-builds.lock" || fail "building the other versions"
# The other builds run with their own libchoreo (their RUNPATH), not the
# one meson test points LD_LIBRARY_PATH at (built with sanitizers).
OLD_BIN=$T/choreo-0.1.0
NEXT_BIN=$T/choreo-next
printf '#!/bin/sh\nexec env -u LD_LIBRARY_PATH "%s" "$@"\n' "$OLD/build/choreo" >"$OLD_BIN"
printf '#!/bin/sh\nexec env -u LD_LIBRARY_PATH "%s" "$@"\n' "$NEXT/choreo" >"$NEXT_BIN"
chmod +x "$OLD_BIN" "$NEXT_BIN"
"$OLD_BIN" version | grep -qx "choreo 0.1.0" || fail "the old build is not 0.1.0: $("$OLD_BIN" version)"
"$NEXT_BIN" version --json | jq -e '.proto.max == 3' >/dev/null ||
  fail "the proto_next build does not speak minor 3: $("$NEXT_BIN" version --json)"
"$NEW_BIN" version --json |
  jq -e --arg v "$("$NEW_BIN" version | head -n 1 | cut -d ' ' -f 2)" \
    '.version == $v and .proto == {"major": 1, "min": 0, "max": 2} and .state_format == 1' >/dev/null ||
  fail "version --json: $("$NEW_BIN" version --json)"
ok "0.1.0 built from $OLD_COMMIT; version --json gives the release and protocol 1.0-1.2"

HOLDING="$(echo "behaviours:"; behaviour holding "{group: db}" "when: {any: maintenance}")"
pdb=$(free_port); pw1=$(free_port); pw2=$(free_port)
write_config db1 "$pdb" "[db]" "[]"
write_config web1 "$pw1" "[web]" "[tcp://127.0.0.1:$pdb]" "$HOLDING"
write_config web2 "$pw2" "[web]" "[tcp://127.0.0.1:$pdb]" "$HOLDING"
WEBS="web1 web2"

# truth STATE: db1 goes to STATE (ready or maintenance); every agent sees
# it, and every web's `holding` ends on the action that matches.
truth() {
  local want=run n
  [ "$1" = maintenance ] || want=revert
  c db1 set "$1" || fail "db1 set $1"
  for n in $WEBS; do
    wait_for "$n sees db1 $1" 10 sees "$n" db1 "$1"
    wait_for "$n's holding last ran $want" 10 last_is "$n" holding "$want"
  done
}
last_is() { [ "$(last_call "$1" "$2")" = "$3" ] && idle "$1"; }

# ---- a mixed cluster: db1 and web1 on 0.1.0, web2 on this version ----
run_as "$OLD_BIN" db1
run_as "$OLD_BIN" web1
run_as "$NEW_BIN" web2
for n in db1 web1 web2; do wait_for "$n sees 3 members" 10 has_members "$n" 3; done
truth maintenance
truth ready
ok "0.1.0 and this version live the story together"

wait_for "web2 shows db1 unversioned" 10 shows web2 db1 version '"unversioned"'
shows web2 db1 proto 0 || fail "web2: db1's proto is $(peer_field web2 db1 proto), not 0"
shows web2 web1 version '"unversioned"' || fail "web2: web1 is $(peer_field web2 web1 version)"
c web2 peers | grep -E '^NAME .* VERSION' >/dev/null || fail "peers has no VERSION column: $(c web2 peers)"
c web2 peers | grep -E '^db1 .* unversioned' >/dev/null || fail "peers does not show db1 unversioned: $(c web2 peers)"
settled web2 10
has_lines "$T/web2.log" "peer db1 runs an unversioned agent (0.1.0" 1 ||
  fail "web2 did not say once that db1 is unversioned: $(grep unversioned "$T/web2.log")"
has_lines "$T/web2.log" "peer web1 runs an unversioned agent" 1 || fail "web2 did not say once that web1 is unversioned"
[ "$(metric web2 choreo_messages_unversioned_total)" -gt 10 ] || fail "unversioned messages not counted"
ok "web2 shows, counts and says once per peer that db1 and web1 are unversioned"

# upgrade NAME: stop NAME's 0.1.0 agent (if running), start this version
# on the same state_dir; its 0.1.0 state.json is migrated, the old one
# kept.
upgrade() {
  local n=$1
  [ -z "${AGENT_PID[$n]:-}" ] || kill_agent "$n" TERM
  [ -f "$T/$n.state/state.json" ] || fail "$n (0.1.0) wrote no state.json"
  jq -e 'has("format") | not' "$T/$n.state/state.json" >/dev/null || fail "0.1.0's state.json has a format"
  cp "$T/$n.state/state.json" "$T/$n.state-0.1.0"
  local said
  said=$(count_lines "$T/$n.log" "state.json migrated from format 0 (choreo 0.1.0) to format 1; the old file is kept as state.json.v0")
  run_as "$NEW_BIN" "$n"
  jq -e '.format == 1' "$T/$n.state/state.json" >/dev/null ||
    fail "$n's state.json was not migrated: $(cat "$T/$n.state/state.json")"
  cmp -s "$T/$n.state-0.1.0" "$T/$n.state/state.json.v0" || fail "$n's backup differs from its 0.1.0 state.json"
  has_lines "$T/$n.log" "state.json migrated from format 0 (choreo 0.1.0) to format 1; the old file is kept as state.json.v0" $((said + 1)) ||
    fail "$n did not say it migrated its state_dir"
}

upgrade web1
wait_for "web2 shows web1 as this version" 10 shows web2 web1 version "\"$("$NEW_BIN" version | head -n 1 | cut -d ' ' -f 2)\""
shows web2 web1 proto 2 || fail "web2 and web1 do not speak minor 2: $(peer_field web2 web1 proto)"
truth maintenance
truth ready
ok "web1 upgraded on its state_dir (migrated, backup kept); the story goes on"

upgrade db1
truth maintenance
shows web1 db1 proto 2 || fail "web1 and db1 do not speak minor 2: $(peer_field web1 db1 proto)"
truth ready
ok "db1 upgraded; every change of db1 reaches everyone and every last action matches"

# ---- rollback: web1 back to 0.1.0 on its migrated state_dir ----
kill_agent web1 TERM
[ -f "$T/web1.state/state.json.v0" ] || fail "the migration's backup is gone"
jq -e '.behaviours.holding.applied == "revert"' "$T/web1.state/applied.json" >/dev/null ||
  fail "web1's applied.json before the rollback: $(cat "$T/web1.state/applied.json")"
run_as "$OLD_BIN" web1
wait_for "web1 (0.1.0 again) sees 3 members" 10 has_members web1 3
wait_for "web2 shows web1 unversioned again" 10 shows web2 web1 version '"unversioned"'
truth maintenance
truth ready
truth maintenance
ok "web1 rolled back to 0.1.0 on the migrated state_dir; the backup is kept; the story goes on"

# Upgraded again while db1 goes back to ready: the applied.json of before
# the rollback (revert) is stale, since 0.1.0 ran holding since; the
# migration marks what was applied unknown, and the restarted web1
# reverts.
kill_agent web1 TERM
WEBS=web2 truth ready
upgrade web1
grep -q "applied.json: written at an upgrade from choreo 0.1.0, which kept no record of what it applied; what behaviours applied before is unknown" "$T/web1.log" ||
  fail "web1 did not set its stale applied.json aside"
wait_for "web1 reverts holding after the upgrade" 15 last_is web1 holding revert
truth maintenance
truth ready
ok "upgraded again after the rollback: the stale applied.json is set aside and the last action matches the truth"

# ---- negotiation: two agents of the next minor join ----
# old1 runs 0.1.0 among them.
pn1=$(free_port); pn2=$(free_port); po1=$(free_port)
write_config nx1 "$pn1" "[web]" "[tcp://127.0.0.1:$pdb]" "$HOLDING"
write_config nx2 "$pn2" "[web]" "[tcp://127.0.0.1:$pdb]" "$HOLDING"
write_config old1 "$po1" "[web]" "[tcp://127.0.0.1:$pdb]" "$HOLDING"
run_as "$NEXT_BIN" nx1
run_as "$NEXT_BIN" nx2
run_as "$OLD_BIN" old1
WEBS="web1 web2 nx1 nx2 old1"
for n in db1 web1 web2 nx1 nx2 old1; do wait_for "$n sees 6 members" 15 has_members "$n" 6; done
wait_for "nx1 and nx2 speak minor 3" 10 shows nx1 nx2 proto 3
shows nx1 nx2 heartbeat_ms 200 || fail "nx1 did not read nx2's minor-3 field: $(peer_field nx1 nx2 heartbeat_ms)"
shows nx1 db1 proto 2 || fail "nx1 and db1 do not speak minor 2: $(peer_field nx1 db1 proto)"
shows nx1 db1 heartbeat_ms null || fail "nx1 shows a minor-3 field for db1"
shows nx1 old1 proto 0 || fail "nx1 and old1 (0.1.0) do not speak minor 0"
shows nx1 old1 version '"unversioned"' || fail "nx1 does not show old1 unversioned"
wait_for "db1 shows nx1's range" 10 shows db1 nx1 proto_range '[0,3]'
shows db1 nx1 proto 2 || fail "db1 and nx1 do not speak minor 2: $(peer_field db1 nx1 proto)"
shows db1 nx1 heartbeat_ms null || fail "db1 read a field of a minor it does not speak"
truth maintenance
truth ready
for n in db1 web2; do
  [ "$(metric "$n" 'choreo_messages_dropped_total{reason="bad_field"}')" = 0 ] ||
    fail "$n dropped messages of the newer minor"
done
ok "agents of 0.1.0, this version and the next minor agree pairwise on the highest minor and live the story"

# ---- bad input: other versions, a version of the wrong type ----
# msg FILE JQ: the sample state message of a sender changed by JQ.
mkdir "$T/msgs"
msg() {
  jq -c "$2" >"$T/msgs/$1" <<JSON
{"v":1,"proto":[0,1],"release":"0.2.0","cluster":"test","from":"ghost","inc":1700000000,"seq":1,"type":"state",
 "rec":{"addr":"tcp://127.0.0.1:1","ver":1,"left":false,"state":"ready","reason":"","since":1,"groups":["db"],"data":{}},
 "digest":"0000000000000001","known":1}
JSON
}
msg future_minor '.proto = [5, 6] | .from = "ghost1"'
msg future_major '.v = 2 | .from = "ghost2"'
msg proto_text '.proto = "1" | .from = "ghost3"'
msg release_number '.release = 5 | .from = "ghost4"'
before_proto=$(metric web2 'choreo_messages_dropped_total{reason="proto_unsupported"}')
before_version=$(metric web2 'choreo_messages_dropped_total{reason="bad_version"}')
before_field=$(metric web2 'choreo_messages_dropped_total{reason="bad_field"}')
"$CHOREO_TAP" send "tcp://127.0.0.1:$pw2" 20 20 "$T/msgs/future_minor" "$T/msgs/future_major" \
  "$T/msgs/proto_text" "$T/msgs/release_number" 2>>"$T/tap.log" || fail "tap send"
above() { [ "$(metric web2 "$1")" -gt "$2" ]; }
wait_for "future minors dropped" 10 above 'choreo_messages_dropped_total{reason="proto_unsupported"}' "$before_proto"
wait_for "another major dropped" 10 above 'choreo_messages_dropped_total{reason="bad_version"}' "$before_version"
wait_for "mistyped versions dropped" 10 above 'choreo_messages_dropped_total{reason="bad_field"}' "$((before_field + 1))"
has_lines "$T/web2.log" "peer ghost1: dropping its messages: it speaks protocol 1.5-1.6, this agent 1.0-1.2 (proto_unsupported)" 1 ||
  fail "web2 did not say once why ghost1 is dropped: $(grep ghost1 "$T/web2.log")"
has_lines "$T/web2.log" "peer ghost2: dropping its messages: version 2; this agent speaks version 1 (bad_version)" 1 ||
  fail "web2 did not say once why ghost2 is dropped: $(grep ghost2 "$T/web2.log")"
for g in ghost1 ghost2 ghost3 ghost4; do
  [ -z "$(peer_field web2 "$g" name)" ] || fail "web2 took $g into its table"
done
c web2 status --json >/dev/null || fail "web2 stopped answering"
ok "other versions and mistyped version fields are dropped, counted, said once per sender"

# ---- a state_dir file from the future refuses the start ----
pz=$(free_port)
write_config zed "$pz" "[web]" "[]"
mkdir -m 700 "$T/zed.state"
echo '{"format": 2, "state": "ready", "inc": 5, "shape": "new"}' >"$T/zed.state/state.json"
cp "$T/zed.state/state.json" "$T/zed.future"
rv=0
timeout 10 "$NEW_BIN" agent -c "$T/zed.yaml" >"$T/zed.log" 2>&1 || rv=$?
[ "$rv" = 1 ] || fail "an agent with a newer state.json exited $rv, not 1"
grep -q "state.json: format 2, newer than this agent's (1)" "$T/zed.log" ||
  fail "no clear message: $(cat "$T/zed.log")"
cmp -s "$T/zed.future" "$T/zed.state/state.json" || fail "the newer state.json was changed"
[ "$(ls -A "$T/zed.state")" = state.json ] || fail "something was written: $(ls -A "$T/zed.state")"
echo '{"format": "2", "state": "ready", "inc": 5}' >"$T/zed.state/state.json"
rv=0
timeout 10 "$NEW_BIN" agent -c "$T/zed.yaml" >"$T/zed.log" 2>&1 || rv=$?
[ "$rv" = 1 ] && grep -q '"format" is not a whole number' "$T/zed.log" ||
  fail "a mistyped format: exit $rv, $(cat "$T/zed.log")"
ok "a state_dir file of a newer format or a mistyped one refuses the start, naming it, writing nothing"
