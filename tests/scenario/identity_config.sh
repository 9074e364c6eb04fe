#!/usr/bin/env bash
# Bad identity files (docs/CONFIGURATION.md "identity"): a certificate
# for another key, expired, naming another node, from an operator not
# trusted, without one of the node's groups, and a key file others can
# read. `choreo check` names the file, line and what is wrong (exit 2);
# the agent refuses to start (exit 2); a reload with such a file is
# refused whole and the running identity stays.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/identity_lib.sh"

secret "$T/op.key"
secret "$T/rogue.key"
secret "$T/db1.sk"
secret "$T/other.sk"
OP=$(ch pubkey "$T/op.key") || fail "pubkey"
now=$(date +%s)
cert() { # OUT OPKEY NODE GROUPS NODEKEY [OPTION...]
  local out=$1
  shift
  issue_cert "$T/$out" "$@"
}
cert good.cert "$T/op.key" db1 db "$T/db1.sk"
cert otherkey.cert "$T/op.key" db1 db "$T/other.sk"
cert expired.cert "$T/op.key" db1 db "$T/db1.sk" --not-before $((now - 7200)) --not-after $((now - 3600))
cert othernode.cert "$T/op.key" web1 db "$T/db1.sk"
cert rogue.cert "$T/rogue.key" db1 db "$T/db1.sk"
cert nogroup.cert "$T/op.key" db1 web "$T/db1.sk"

pdb=$(free_port); pw=$(free_port)
config() { # CERT [KEYFILE]
  write_config db1 "$pdb" "[db]" "[]" "identity:
  key_file: ${2:-$T/db1.sk}
  cert_file: $T/$1
  operators: [$OP]"
}
config good.cert
"$CHOREO_BIN" check -c "$T/db1.yaml" >/dev/null 2>&1 || fail "the good identity is refused: $("$CHOREO_BIN" check -c "$T/db1.yaml" 2>&1)"
ok "a certificate that fits the key, the node, its groups and the operators passes choreo check"

# refused CERT PATTERN [KEYFILE]: check and start both refuse, exit 2.
refused() {
  local what=$1 pattern=$2 out rc
  config "$what" "${3:-}"
  out=$("$CHOREO_BIN" check -c "$T/db1.yaml" 2>&1); rc=$?
  [ "$rc" = 2 ] || fail "check with $what: exit $rc: $out"
  grep -Eq "^$T/db1.yaml:[0-9]+:[0-9]+: identity\.(cert_file|key_file): .*$pattern" <<<"$out" ||
    fail "check with $what does not say where and what: $out"
  out=$(timeout 10 "$CHOREO_BIN" agent -c "$T/db1.yaml" 2>&1); rc=$?
  [ "$rc" = 2 ] || fail "the agent started with $what: exit $rc"
  grep -Eq "$pattern" <<<"$out" || fail "the agent did not say why: $out"
}
refused otherkey.cert "the certificate is for another key than identity.key_file's"
ok "a certificate for another key: check and start refuse it (exit 2), naming the file"
refused expired.cert "the certificate is expired"
ok "an expired certificate: refused"
refused othernode.cert "the certificate names node web1, not db1"
ok "a certificate naming another node: refused"
refused rogue.cert "signed by an operator key not in identity.operators"
ok "a certificate from an operator not in identity.operators: refused"
refused nogroup.cert "node.groups has db, which the certificate does not list"
ok "a certificate without one of node.groups: refused"
cp "$T/db1.sk" "$T/open.sk"; chmod 644 "$T/open.sk"
refused good.cert "chmod 600" "$T/open.sk"
ok "a node key readable by others: refused, with the chmod to run"

# A reload with a bad certificate is refused whole; the old identity stays.
config good.cert
start_agent db1
write_config w1 "$pw" "[web]" "[tcp://127.0.0.1:$pdb]"
secret "$T/w1.sk"
cert w1.cert "$T/op.key" w1 web "$T/w1.sk"
cat >> "$T/w1.yaml" <<YAML
identity:
  key_file: $T/w1.sk
  cert_file: $T/w1.cert
  operators: [$OP]
YAML
start_agent w1
wait_for "w1 sees db1" 10 sees w1 db1 ready
sed -i "s|cert_file: $T/good.cert|cert_file: $T/expired.cert|" "$T/db1.yaml"
out=$(c db1 reload 2>&1); rc=$?
[ "$rc" = 1 ] || fail "reload with an expired certificate: exit $rc: $out"
grep -q "the certificate is expired" <<<"$out" || fail "reload did not say why: $out"
c db1 set maintenance --reason "after the refused reload" || fail "set"
wait_for "w1 still verifies db1's records" 5 sees w1 db1 maintenance
[ "$(metric w1 'choreo_identity_dropped_total{reason="expired"}')" = 0 ] || fail "db1 sent the expired certificate"
ok "a reload with an expired certificate is refused whole; db1 keeps signing with the old one"
sed -i "s|cert_file: $T/expired.cert|cert_file: $T/good.cert|" "$T/db1.yaml"
c db1 reload >/dev/null || fail "reload back"
