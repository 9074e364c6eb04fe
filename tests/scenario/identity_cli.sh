#!/usr/bin/env bash
# Node identity from the command line, as an operator runs it: signing keys
# (keygen --signing, pubkey, the 0600 rule), certificates (cert issue, cert
# show: valid, expired, untrusted, tampered), revocations (cert revoke by
# serial and by file, revoke without an agent), and the bad inputs each
# command must refuse with exit 2 and a message naming what is wrong.
source "$(dirname "$0")/lib.sh"

B=$CHOREO_BIN

# run EXPECTED_RC DESCRIPTION COMMAND...: run it, keep its stdout in $OUT
# and stderr in $ERR, fail unless it exits EXPECTED_RC.
run() {
  local want=$1 what=$2 rc
  shift 2
  OUT=$("$@" 2>"$T/err"); rc=$?
  ERR=$(cat "$T/err")
  [ "$rc" = "$want" ] || fail "$what: exit $rc, expected $want (stdout: $OUT; stderr: $ERR)"
}

# refused DESCRIPTION PATTERN COMMAND...: exit 2, stderr matches PATTERN.
refused() {
  local what=$1 pattern=$2
  shift 2
  run 2 "$what" "$@"
  echo "$ERR" | grep -qE -- "$pattern" ||
    fail "$what: stderr does not match /$pattern/: $ERR"
  ok "$what: refused, exit 2: $(echo "$ERR" | head -n 1)"
}

# ---- keys ----
(umask 077 && "$B" keygen --signing >"$T/op.key" && "$B" keygen --signing >"$T/node.key" &&
  "$B" keygen --signing >"$T/other.key") || fail "keygen --signing failed"
[ "$(stat -c %a "$T/op.key")" = 600 ] || fail "op.key is not mode 0600"
grep -qE '^[A-Za-z0-9+/]{86}==$' "$T/op.key" || fail "keygen --signing: not 88 characters of base64: $(cat "$T/op.key")"
cmp -s "$T/op.key" "$T/node.key" && fail "keygen --signing printed the same key twice"
ok "keygen --signing prints a new 88-character base64 key each time"

run 0 "keygen (cluster key)" "$B" keygen
echo "$OUT" | grep -qE '^[A-Za-z0-9+/]{43}=$' || fail "plain keygen no longer prints a 32-byte key: $OUT"
ok "plain keygen still prints a 32-byte cluster key"

run 0 "pubkey node.key" "$B" pubkey "$T/node.key"
NODE_PUB=$OUT
echo "$NODE_PUB" >"$T/node.pub"
echo "$NODE_PUB" | grep -qE '^[A-Za-z0-9+/]{43}=$' || fail "pubkey: not 44 characters of base64: $NODE_PUB"
run 0 "pubkey op.key" "$B" pubkey "$T/op.key"
OP_PUB=$OUT
run 0 "pubkey other.key" "$B" pubkey "$T/other.key"
OTHER_PUB=$OUT
[ "$OP_PUB" != "$NODE_PUB" ] || fail "two keys, one public key"
ok "pubkey prints the 44-character public key"

cp "$T/op.key" "$T/open.key"
chmod 644 "$T/open.key"
refused "pubkey of a 0644 key file" \
  "^choreo pubkey: $T/open.key: readable by others \(mode 0644\); chmod 600 $T/open.key$" \
  "$B" pubkey "$T/open.key"
refused "cert issue with a 0644 operator key" "readable by others \(mode 0644\); chmod 600" \
  "$B" cert issue --operator-key "$T/open.key" --node web1 --groups web --public "$NODE_PUB"
(umask 077 && echo "not a key" >"$T/bad.key")
refused "pubkey of a file that holds no key" "$T/bad.key: not a signing key" "$B" pubkey "$T/bad.key"

# ---- cert issue, cert show ----
run 0 "cert issue" "$B" cert issue --operator-key "$T/op.key" --node web1 \
  --groups web,eu-west --public "$T/node.pub"
echo "$OUT" >"$T/web1.cert"
[ "$(wc -l <"$T/web1.cert")" = 1 ] || fail "cert issue: not one line"
python3 - "$T/web1.cert" "$NODE_PUB" "$OP_PUB" <<'PY' || fail "cert issue: unexpected certificate: $OUT"
import json, sys, time
c = json.load(open(sys.argv[1]))
assert c["cert"] == 1 and c["node"] == "web1" and c["groups"] == ["web", "eu-west"]
assert c["key"] == sys.argv[2] and c["operator"] == sys.argv[3]
assert len(c["serial"]) == 16 and len(c["sig"]) == 88
now = time.time()
assert abs(c["not_before"] - (now - 86400)) < 120
assert abs(c["not_after"] - (now + 365 * 86400)) < 120
PY
ok "cert issue prints one JSON line: node, groups, key, serial, valid from a day ago to a year from now"

run 0 "cert show of a valid certificate" "$B" cert show "$T/web1.cert"
echo "$OUT" | grep -q '^node: *web1$' || fail "cert show: no node line: $OUT"
echo "$OUT" | grep -q '^groups: *web, eu-west$' || fail "cert show: no groups line: $OUT"
echo "$OUT" | grep -qE '^valid from: *[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' || fail "cert show: no ISO-8601 UTC time: $OUT"
echo "$OUT" | tail -n 1 | grep -q 'valid now: signature good' || fail "cert show: last line: $OUT"
ok "cert show: fields, UTC times, and 'valid now' last, exit 0"

run 0 "cert show --operator (the issuer)" "$B" cert show "$T/web1.cert" --operator "$OP_PUB"
echo "$OUT" | tail -n 1 | grep -q 'trusted operator key' || fail "cert show --operator: $OUT"
ok "cert show --operator with the issuer's key: trusted, exit 0"

echo "$OTHER_PUB" >"$T/other.pub"
run 1 "cert show --operator (another key)" "$B" cert show "$T/web1.cert" --operator "$T/other.pub"
echo "$OUT" | tail -n 1 | grep -q 'NOT valid: .*operator key not given' || fail "cert show, untrusted: $OUT"
ok "cert show --operator with another key: not trusted, exit 1"

run 0 "cert show --json" "$B" cert show "$T/web1.cert" --json --operator "$OTHER_PUB" --operator "$OP_PUB"
python3 -c 'import json,sys; j=json.loads(sys.argv[1]); assert j["valid"] is True and j["problem"] is None and j["trusted"] is True and j["node"] == "web1", j' "$OUT" ||
  fail "cert show --json (valid): $OUT"
run 1 "cert show --json (untrusted)" "$B" cert show "$T/web1.cert" --json --operator "$OTHER_PUB"
python3 -c 'import json,sys; j=json.loads(sys.argv[1]); assert j["valid"] is False and j["problem"] == "untrusted operator", j' "$OUT" ||
  fail "cert show --json (untrusted): $OUT"
ok "cert show --json: valid true/problem null, and false/'untrusted operator'"

run 0 "cert issue --days 0" "$B" cert issue --operator-key "$T/op.key" --node web1 --groups "" \
  --public "$NODE_PUB" --not-before 1000000000 --days 0
echo "$OUT" >"$T/old.cert"
grep -q '"groups":\[\]' "$T/old.cert" || fail "--groups \"\": not an empty list: $OUT"
run 1 "cert show of an expired certificate" "$B" cert show "$T/old.cert"
echo "$OUT" | tail -n 1 | grep -q 'NOT valid: signature good but expired' || fail "expired: $OUT"
run 1 "cert show --json of an expired certificate" "$B" cert show "$T/old.cert" --json
python3 -c 'import json,sys; j=json.loads(sys.argv[1]); assert j["valid"] is False and j["problem"] == "expired", j' "$OUT" ||
  fail "cert show --json (expired): $OUT"
ok "a certificate that ended in 2001 is reported expired, exit 1"

run 0 "cert issue --not-after in the past" "$B" cert issue --operator-key "$T/op.key" --node web1 \
  --groups web --public "$NODE_PUB" --not-before 10 --not-after 20
echo "$OUT" >"$T/old2.cert"
run 1 "cert show (not-after 20)" "$B" cert show "$T/old2.cert"
echo "$OUT" | tail -n 1 | grep -q expired || fail "--not-after 20: $OUT"
ok "cert issue --not-after in the past gives an expired certificate"

sed 's/"node":"web1"/"node":"web2"/' "$T/web1.cert" >"$T/tampered.cert"
cmp -s "$T/web1.cert" "$T/tampered.cert" && fail "sed did not change the certificate"
run 1 "cert show of a tampered certificate" "$B" cert show "$T/tampered.cert" --operator "$OP_PUB"
echo "$OUT" | tail -n 1 | grep -q 'NOT valid: bad signature' || fail "tampered: $OUT"
run 1 "cert show --json of a tampered certificate" "$B" cert show "$T/tampered.cert" --json
python3 -c 'import json,sys; j=json.loads(sys.argv[1]); assert j["valid"] is False and j["problem"] == "bad signature" and j["signature"] == "bad", j' "$OUT" ||
  fail "cert show --json (tampered): $OUT"
ok "a certificate with its node name edited: bad signature, exit 1"

# ---- cert revoke, revoke ----
SERIAL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["serial"])' "$T/web1.cert")
run 0 "cert revoke by file" "$B" cert revoke --operator-key "$T/op.key" "$T/web1.cert"
echo "$OUT" >"$T/web1.revoke"
python3 - "$T/web1.revoke" "$SERIAL" "$OP_PUB" <<'PY' || fail "cert revoke by file: $OUT"
import json, sys, time
r = json.load(open(sys.argv[1]))
assert r["revoke"] == 1 and r["serial"] == sys.argv[2] and r["node"] == "web1"
assert r["operator"] == sys.argv[3] and len(r["sig"]) == 88
assert abs(r["time"] - time.time()) < 120
PY
ok "cert revoke CERT_FILE: a signed revocation of its serial and node"

run 0 "cert revoke by serial" "$B" cert revoke --operator-key "$T/op.key" 0123456789ABCDEF
echo "$OUT" >"$T/serial.revoke"
python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["serial"] == "0123456789abcdef" and r["node"] == "", r' "$OUT" ||
  fail "cert revoke by serial: $OUT"
ok "cert revoke SERIAL: a revocation of that serial, no node"

run 3 "revoke without an agent" "$B" revoke "$T/web1.revoke" --socket "$T/none.sock"
echo "$ERR" | grep -q "no agent answers" || fail "revoke without an agent: $ERR"
ok "revoke with no agent on the socket: exit 3"

# An agent without identity (or one that does not know the request)
# refuses the revocation: exit 1, with the agent's reason.
write_config n1 "$(free_port)" "[web]" "[]"
start_agent n1
run 1 "revoke to an agent without identity" "$B" revoke "$T/web1.revoke" --socket "$T/n1.sock"
echo "$ERR" | grep -q "^choreo revoke: refused by the agent: ." || fail "revoke refused: $ERR"
run 1 "revoke -c to an agent without identity" "$B" revoke "$T/serial.revoke" -c "$T/n1.yaml"
kill_agent n1
ok "revoke to an agent that refuses it: exit 1 with the agent's reason ($ERR)"

sed 's/"time":/"time":1/' "$T/web1.revoke" >"$T/edited.revoke"
sed 's/"serial":"[0-9a-f]*"/"serial":"12"/' "$T/web1.revoke" >"$T/badserial.revoke"
refused "revoke of a file with a bad serial" "badserial.revoke: field \"serial\": not 16 hex digits" \
  "$B" revoke "$T/badserial.revoke" --socket "$T/none.sock"
refused "revoke of a certificate" "field \"revoke\": missing" \
  "$B" revoke "$T/web1.cert" --socket "$T/none.sock"
# A changed field is still a well-formed revocation: the agent judges its
# signature, so without an agent this one gets as far as connecting.
run 3 "revoke of an edited revocation (no agent)" "$B" revoke "$T/edited.revoke" --socket "$T/none.sock"
ok "revoke checks the form before connecting; the signature is the agent's to judge"

# ---- bad inputs ----
refused "cert issue without --operator-key" "--operator-key FILE is missing" \
  "$B" cert issue --node web1 --groups web --public "$NODE_PUB"
refused "cert issue without --node" "--node NAME is missing" \
  "$B" cert issue --operator-key "$T/op.key" --groups web --public "$NODE_PUB"
refused "cert issue without --groups" "--groups LIST is missing" \
  "$B" cert issue --operator-key "$T/op.key" --node web1 --public "$NODE_PUB"
refused "cert issue without --public" "--public KEY is missing" \
  "$B" cert issue --operator-key "$T/op.key" --node web1 --groups web
refused "cert issue with bad base64" "--public: 'AAAA!AAA' is neither a public key" \
  "$B" cert issue --operator-key "$T/op.key" --node web1 --groups web --public 'AAAA!AAA'
refused "cert issue with a bad group name" "--groups: 'we b' is not a valid group name" \
  "$B" cert issue --operator-key "$T/op.key" --node web1 --groups 'web,we b' --public "$NODE_PUB"
refused "cert issue with a group twice" "--groups: 'web' twice" \
  "$B" cert issue --operator-key "$T/op.key" --node web1 --groups web,db,web --public "$NODE_PUB"
refused "cert issue with 17 groups" "--groups: more than 16 groups" \
  "$B" cert issue --operator-key "$T/op.key" --node web1 --groups a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q --public "$NODE_PUB"
refused "cert issue with a bad node name" "--node: 'web 1' is not a valid node name" \
  "$B" cert issue --operator-key "$T/op.key" --node 'web 1' --groups web --public "$NODE_PUB"
refused "cert issue with --days and --not-after" "--days or --not-after, not both" \
  "$B" cert issue --operator-key "$T/op.key" --node web1 --groups web --public "$NODE_PUB" --days 3 --not-after 5
refused "cert issue with --days -1" "--days: '-1' is not a number of days" \
  "$B" cert issue --operator-key "$T/op.key" --node web1 --groups web --public "$NODE_PUB" --days -1
refused "cert issue ending before it starts" "would end before it starts" \
  "$B" cert issue --operator-key "$T/op.key" --node web1 --groups web --public "$NODE_PUB" --not-before 50 --not-after 40
refused "cert issue with a secret key as --public" "--public: .*node.key: not a public key" \
  "$B" cert issue --operator-key "$T/op.key" --node web1 --groups web --public "$T/node.key"
refused "cert show of a file that is not a certificate" "op.key: not JSON" "$B" cert show "$T/op.key"
refused "cert show with a bad --operator" "--operator: 'xyz' is neither a public key" \
  "$B" cert show "$T/web1.cert" --operator xyz
refused "cert revoke of a bad serial" "'12345' is neither a serial \(16 hex digits\) nor a certificate file" \
  "$B" cert revoke --operator-key "$T/op.key" 12345
refused "cert revoke without --operator-key" "--operator-key FILE is missing" \
  "$B" cert revoke "$T/web1.cert"
refused "cert with an unknown command" "unknown command 'sign'" "$B" cert sign
refused "keygen with an unknown option" "unknown option '--secret'" "$B" keygen --secret
refused "pubkey without FILE" "give exactly one key FILE" "$B" pubkey

run 0 "cert --help" "$B" cert --help
echo "$OUT" | grep -q "issue" || fail "cert --help: $OUT"
for sub in issue show revoke; do
  run 0 "cert $sub --help" "$B" cert $sub --help
  echo "$OUT" | grep -q "^Usage: choreo cert $sub" || fail "cert $sub --help: $OUT"
done
run 0 "choreo --help" "$B" --help
for cmd in pubkey cert revoke; do
  echo "$OUT" | grep -qE "^  $cmd " || fail "choreo --help does not list $cmd"
done
ok "cert, cert issue|show|revoke --help, and choreo --help lists pubkey, cert, revoke"
