#!/usr/bin/env bash
# Relays (docs/ARCHITECTURE.md "Relays"): two relays, three leaves that
# talk to the relays only and one plain mesh member live the story; a
# relay killed changes nothing the leaves see but the relay itself; a
# relay restarted is back; batches that are malformed or carry garbage
# change nothing and are counted; `choreo check` refuses a relay that is
# also a leaf and a leaf with join addresses.
source "$(dirname "$0")/lib.sh"
: "${CHOREO_TAP:?CHOREO_TAP must point at the tap test helper}"

install_recorder
behaviour='behaviours:
  - name: holding-page
    peers: {group: db}
    when: {any: maintenance}
    run: ['"$T"'/record.sh, "on"]
    revert: ['"$T"'/record.sh, "off"]'

pr1=$(free_port); pr2=$(free_port); pdb=$(free_port)
pw1=$(free_port); pw2=$(free_port); pw3=$(free_port)
relays="[tcp://127.0.0.1:$pr1, tcp://127.0.0.1:$pr2]"
NET_EXTRA="  relay: true" write_config r1 "$pr1" "[relay]" "[]"
NET_EXTRA="  relay: true" write_config r2 "$pr2" "[relay]" "[tcp://127.0.0.1:$pr1]"
NET_EXTRA="  relays: $relays" write_config db1 "$pdb" "[db]" "[]"
NET_EXTRA="  relays: $relays" write_config web1 "$pw1" "[web]" "[]" "$behaviour"
NET_EXTRA="  relays: $relays" write_config web2 "$pw2" "[web]" "[]" "$behaviour"
write_config web3 "$pw3" "[web]" "[tcp://127.0.0.1:$pr1]" "$behaviour"
all="r1 r2 db1 web1 web2 web3"

for n in $all; do start_agent "$n"; done
for n in $all; do wait_for "$n sees 6 members" 10 has_members "$n" 6; done
ok "two relays, three leaves and a mesh member: everyone sees six members"

out_up() { metric "$1" 'choreo_connections{direction="out",state="up"}'; }
for n in db1 web1 web2; do
  [ "$(out_up "$n")" = 2 ] || fail "leaf $n has $(out_up "$n") outgoing connections, not 2"
done
[ "$(out_up web3)" = 5 ] || fail "mesh member web3 has $(out_up web3) outgoing connections, not 5"
ok "leaves connect to the two relays only; the mesh member to everyone"

c db1 set maintenance --reason "schema upgrade" || fail "set maintenance"
for w in web1 web2 web3; do
  wait_for "$w runs holding-page" 10 has_calls "$w" holding-page "^run peer=db1 .* args=\[on\]$" 1
done
c db1 set ready || fail "set ready"
for w in web1 web2 web3; do
  wait_for "$w reverts" 10 has_calls "$w" holding-page "^revert peer=db1 .* args=\[off\]$" 1
done
settled web1 10
for w in web1 web2 web3; do
  [ "$(calls "$w" holding-page)" = 2 ] || fail "$w ran more than run+revert: $(cat "$T/$w.holding-page")"
done
ok "the story through relays: every webserver ran the holding page once and reverted once"

positive() { local v; v=$(metric "$1" "$2"); [ -n "$v" ] && [ "$v" -gt 0 ]; }
for r in r1 r2; do
  positive "$r" choreo_relay_forwarded_total || fail "$r forwarded nothing"
  positive "$r" choreo_relay_batches_sent_total || fail "$r sent no batch"
done
for n in web1 web3; do
  positive "$n" choreo_relay_batches_received_total || fail "$n received no batch"
  positive "$n" choreo_relay_duplicates_total || fail "$n saw no copy through the second relay"
done
for n in $all; do
  replay=$(metric "$n" 'choreo_messages_dropped_total{reason="replay"}')
  [ "$replay" = 0 ] || fail "$n counted $replay replays: copies through two relays are duplicates"
done
[ "$(metric web1 choreo_relay_forwarded_total)" = 0 ] || fail "leaf web1 forwarded messages"
ok "relays forward in batches; the second relay's copies are counted as duplicates, not replays"

# A relay dies: its leaves still hear each other through the other one.
kill_agent r1
wait_for "web1 sees r1 lost" 10 sees web1 r1 lost
for n in db1 web2 web3 r2; do
  [ "$(state_seen web1 "$n")" != lost ] || fail "web1 lost $n with r1"
done
settled web1 10
for n in db1 web2 web3 r2; do
  [ "$(state_seen web1 "$n")" != lost ] || fail "web1 lost $n with r1 (later)"
done
c db1 set maintenance || fail "set maintenance with r1 down"
for w in web1 web2 web3; do
  wait_for "$w runs holding-page through r2" 10 has_calls "$w" holding-page "^run peer=db1 .* args=\[on\]$" 2
done
ok "with one relay down the leaves still see each other and react"

start_agent r1
wait_for "r1 sees 6 members again" 10 has_members r1 6
wait_for "web1 sees r1 back" 10 sees web1 r1 ready
wait_for "r1 sees db1's state" 10 sees r1 db1 maintenance
ok "the relay restarted is back and knows every state"

# Batches from nowhere: framing that doesn't add up, and a well-framed
# batch whose frame is garbage. Neither changes what web1 sees.
printf '\000choreo\001\000\000\377\377{}' > "$T/bad.batch"
printf '\000choreo\001\000\000\000\011not json!' > "$T/garbage.batch"
"$CHOREO_TAP" send "tcp://127.0.0.1:$pw1" 10 50 "$T/bad.batch" "$T/garbage.batch" || fail "tap send"
bad_batch() { positive web1 'choreo_messages_dropped_total{reason="bad_batch"}'; }
not_json() { positive web1 'choreo_messages_dropped_total{reason="not_json"}'; }
wait_for "web1 counts the malformed batch" 10 bad_batch
wait_for "web1 counts the garbage frame" 10 not_json
[ "$(members web1)" = 6 ] || fail "web1's members changed: $(members web1)"
sees web1 db1 maintenance || fail "web1's view of db1 changed"
ok "a malformed batch and a garbage frame are dropped and counted, nothing changes"

cat > "$T/both.yaml" <<YAML
node: {name: both}
network:
  listen: tcp://127.0.0.1:$(free_port)
  relay: true
  relays: [tcp://127.0.0.1:$pr1]
YAML
out=$("$CHOREO_BIN" check -c "$T/both.yaml" 2>&1); rc=$?
[ "$rc" = 2 ] || fail "check of a relay that is a leaf: exit $rc"
grep -q "both.yaml:5:[0-9]*: network.relays: a relay can't be a leaf" <<<"$out" || fail "check said: $out"
cat > "$T/leafjoin.yaml" <<YAML
node: {name: leafjoin}
network:
  listen: tcp://127.0.0.1:$(free_port)
  join: [tcp://127.0.0.1:$pw3]
  relays: [tcp://127.0.0.1:$pr1]
YAML
out=$("$CHOREO_BIN" check -c "$T/leafjoin.yaml" 2>&1); rc=$?
[ "$rc" = 2 ] || fail "check of a leaf with join: exit $rc"
grep -q "leafjoin.yaml:4:[0-9]*: network.join: not used with network.relays" <<<"$out" || fail "check said: $out"
ok "choreo check refuses a relay that is a leaf, and a leaf with join addresses"

# With a key, a relay forwards the frames sealed as their senders sealed
# them, and the leaves open them.
"$CHOREO_BIN" keygen > "$T/cluster.key" && chmod 600 "$T/cluster.key" || fail "keygen"
pk=$(free_port); pka=$(free_port); pkb=$(free_port)
NET_EXTRA="  relay: true
  key_file: $T/cluster.key" write_config kr "$pk" "[relay]" "[]"
for n in ka kb; do
  NET_EXTRA="  relays: [tcp://127.0.0.1:$pk]
  key_file: $T/cluster.key" write_config "$n" "$([ $n = ka ] && echo "$pka" || echo "$pkb")" "[x]" "[]"
done
for n in kr ka kb; do start_agent "$n"; done
for n in kr ka kb; do wait_for "$n sees 3 members" 10 has_members "$n" 3; done
c ka set draining || fail "set draining"
wait_for "kb sees ka draining" 10 sees kb ka draining
positive kb choreo_relay_batches_received_total || fail "kb received no batch"
unauth=$(metric kb 'choreo_messages_dropped_total{reason="unauthenticated"}')
[ "$unauth" = 0 ] || fail "kb could not open $unauth frames"
ok "with a key, sealed frames pass through the relay and open at the leaves"

# With a key, too, the relay is quiet at steady state: a nonce echoed
# once is not echoed again (each echo is a message other members act on,
# which a relay passes on at once), so the leaves' heartbeats stay at the
# relay. Over about 15 heartbeats after settling: nothing forwarded, one
# repeat kept per leaf and heartbeat or so.
settled kr 10
fwd0=$(metric kr choreo_relay_forwarded_total)
kept0=$(metric kr choreo_relay_repeats_kept_total)
settled kr 30
fwd1=$(metric kr choreo_relay_forwarded_total)
kept1=$(metric kr choreo_relay_repeats_kept_total)
[ "$((fwd1 - fwd0))" -le 2 ] ||
  fail "with a key the relay passed on $((fwd1 - fwd0)) leaf messages at steady state (kept $((kept1 - kept0)) back)"
[ "$((kept1 - kept0))" -ge 10 ] || fail "with a key the relay kept only $((kept1 - kept0)) repeats back"
ok "with a key the relay is quiet at steady state: $((fwd1 - fwd0)) passed on, $((kept1 - kept0)) kept back"

# The fleet example (examples/fleet/run.sh) with six webservers, on nine
# consecutive ports.
BASE_PORT=$(free_ports 9) "$CHOREO_SRC/examples/fleet/run.sh" "$CHOREO_BIN" 6 >"$T/fleet.out" 2>&1 ||
  fail "examples/fleet/run.sh: $(tail -n 5 "$T/fleet.out")"
grep -q "all 6 webservers serve the site again" "$T/fleet.out" || fail "fleet example: $(cat "$T/fleet.out")"
ok "examples/fleet/run.sh lives the story with two relays and six webservers"
