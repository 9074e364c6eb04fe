#!/usr/bin/env bash
# Converting a running cluster to identity (docs/OPERATIONS.md "Identity"),
# node by node, with `choreo reload` and no restart: first every node gets
# its key and certificate with identity.required: false (unsigned records
# still accepted, counted and said once per peer), then every node turns
# required on. After every single step a state change on one node reaches
# every other, and the behaviour watching db1 follows it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/behaviours_lib.sh"
source "$(dirname "$0")/identity_lib.sh"
export HEARTBEAT=300ms LOST_AFTER=1500ms

ch keygen > "$T/cluster.key" || fail "keygen"
chmod 600 "$T/cluster.key"
secret "$T/op.key"
OP=$(ch pubkey "$T/op.key") || fail "pubkey"
issue() { # NODE GROUPS
  secret "$T/$1.sk"
  issue_cert "$T/$1.cert" "$T/op.key" "$1" "$2" "$T/$1.sk"
}
issue db1 db
issue w1 web
issue w2 web

install_recorder
pdb=$(free_port); pw1=$(free_port); pw2=$(free_port)
plain_config() { # NAME PORT GROUPS JOIN [EXTRA]
  write_config "$@"
  sed -i "/^  lost_after:/a\\  key_file: $T/cluster.key" "$T/$1.yaml"
}
plain_config db1 "$pdb" "[db]" "[tcp://127.0.0.1:$pw1]"
plain_config w1 "$pw1" "[web]" "[tcp://127.0.0.1:$pdb]"
plain_config w2 "$pw2" "[web]" "[tcp://127.0.0.1:$pdb]" "$(
  echo "behaviours:"
  behaviour holding "{group: db}" "when: {any: maintenance}"
)"
start_agent db1
start_agent w1
start_agent w2
wait_for "the cluster forms without identity" 10 has_members w2 3

# identity NODE REQUIRED: write the node's identity section and reload.
identity() {
  sed -i '/^identity:/,$d' "$T/$1.yaml"
  cat >> "$T/$1.yaml" <<YAML
identity:
  key_file: $T/$1.sk
  cert_file: $T/$1.cert
  operators: [$OP]
  required: $2
YAML
  out=$(c "$1" reload 2>&1) || fail "reload $1 (required: $2): $out"
}

# change NODE STATE: set it, and wait until both others show it.
n=0
change() {
  local node=$1 state=$2 v
  n=$((n + 1))
  c "$node" set "$state" --reason "step $n" || fail "set $node $state"
  for v in db1 w1 w2; do
    [ "$v" = "$node" ] && continue
    wait_for "$v sees $node $state (step $n)" 5 sees "$v" "$node" "$state"
  done
}
# the behaviour on w2 follows db1 at every step
db1_cycle() {
  local runs reverts
  runs=$(calls w2 holding "^run "); reverts=$(calls w2 holding "^revert ")
  change db1 maintenance
  wait_for "w2's behaviour runs (step $n)" 5 has_calls w2 holding "^run " $((runs + 1))
  change db1 ready
  wait_for "w2's behaviour reverts (step $n)" 5 has_calls w2 holding "^revert " $((reverts + 1))
}
db1_cycle
ok "without identity: changes reach everyone"

identity db1 false
db1_cycle; change w1 draining; change w2 draining
ok "db1 signs (required: false): every change reaches everyone"
identity w1 false
db1_cycle; change w1 ready; change w2 ready
ok "db1 and w1 sign: every change reaches everyone"
grep -q "peer w2 sends unsigned records: accepted while identity.required is false" "$T/db1.log" ||
  fail "db1 did not say that w2 is unsigned"
[ "$(grep -c "peer w2 sends unsigned records" "$T/db1.log")" = 1 ] || fail "said more than once"
identity w2 false
db1_cycle; change w1 draining; change w2 draining
ok "all three sign (required: false): every change reaches everyone"
before=$(metric db1 choreo_identity_unsigned_total)
settled db1 6
[ "$(metric db1 choreo_identity_unsigned_total)" = "$before" ] || fail "unsigned records still arrive on db1"

for node in db1 w1 w2; do
  identity "$node" true
  db1_cycle; change w1 ready; change w2 ready
  ok "$node requires signatures: every change reaches everyone"
  change w1 draining; change w2 draining
done
# (no_cert is not in the list: an agent that turns identity on holds no
# certificate yet, drops signed records until it has asked for one and
# got it, within a heartbeat; the changes above show nothing was lost.)
for v in db1 w1 w2; do
  for r in unsigned signature name groups; do
    [ "$(metric "$v" "choreo_identity_dropped_total{reason=\"$r\"}")" = 0 ] ||
      fail "$v dropped legitimate records ($r)"
  done
done
[ "$(calls w2 holding)" = $((2 * 7)) ] || fail "w2's behaviour ran $(calls w2 holding) times, expected 14"
ok "converted: nothing legitimate was dropped; w2's behaviour ran exactly once per change of db1"

# A node without a certificate can't join a cluster that requires one.
pw3=$(free_port)
plain_config w3 "$pw3" "[web]" "[tcp://127.0.0.1:$pdb]"
start_agent w3
wait_for "db1 drops w3's unsigned records" 10 bash -c \
  "[ \"\$(\"$CHOREO_BIN\" metrics --socket $T/db1.sock | awk '\$1 == \"choreo_identity_dropped_total{reason=\\\"unsigned\\\"}\" {print \$2}')\" -ge 1 ]"
[ "$(state_seen db1 w3)" != ready ] || fail "db1 believes the unsigned w3"
ok "once required everywhere, an agent without identity is not believed"
