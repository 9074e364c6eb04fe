#!/usr/bin/env bash
# The JSON Schemas of docs/schema/ against real output: every --json shape
# of the CLI and every control-socket reply they document, produced by
# running agents, must validate; a document that breaks a schema must not.
source "$(dirname "$0")/lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s
S=$CHOREO_SRC/docs/schema

# validate SCHEMA FILE: every line of FILE (one JSON document each) is
# valid against docs/schema/SCHEMA, its $refs resolved in docs/schema/.
validate() {
  python3 - "$S" "$1" "$2" <<'PY'
import json, pathlib, sys
import jsonschema
d, name, path = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
# Strict: an object with "properties" and no "additionalProperties" of its
# own takes no other field, so a field the agent adds without its schema
# fails here (clients, by the stability promise, ignore unknown fields).
def strict(s):
    if isinstance(s, dict):
        if "properties" in s and "additionalProperties" not in s:
            s["additionalProperties"] = False
        for v in s.values():
            strict(v)
    elif isinstance(s, list):
        for v in s:
            strict(v)
    return s
store = {}
for f in d.glob("*.json"):
    s = strict(json.loads(f.read_text()))
    store[s["$id"]] = s
schema = store[json.loads((d / name).read_text())["$id"]]
resolver = jsonschema.RefResolver(schema["$id"], schema, store=store)
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
v = cls(schema, resolver=resolver)
lines = [l for l in pathlib.Path(path).read_text().splitlines() if l.strip()]
if not lines:
    sys.exit("no documents in %s" % path)
for i, line in enumerate(lines):
    errs = sorted(v.iter_errors(json.loads(line)), key=str)
    if errs:
        sys.exit("%s line %d: %s" % (name, i + 1, errs[0].message))
PY
}

# request NODE JSON: one raw control-socket request, the reply line.
request() {
  python3 - "$T/$1.sock" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
sys.stdout.write(buf.decode())
PY
}

pdb=$(free_port); pw=$(free_port)
write_config db1 "$pdb" "[db]" "[]"
write_config web1 "$pw" "[web, edge]" "[tcp://127.0.0.1:$pdb]"
start_agent db1
start_agent web1
wait_for "web1 sees db1" 10 sees web1 db1 ready

"$CHOREO_BIN" watch --json --snapshot --socket "$T/web1.sock" > "$T/events" 2>&1 &
w=$!
wait_for "the snapshot" 5 grep -q '"event":"snapshot"' "$T/events"
c db1 set drain --reason 'schema test' -d k=v --for 1h || fail "set --for"
c web1 set maintenance || fail "set web1"
wait_for "db1 drain in the watch" 5 grep -q '"peer":"db1","state":"drain"' "$T/events"
kill_agent db1
wait_for "db1 lost in the watch" 10 grep -q '"event":"lost"' "$T/events"
kill -INT "$w"; wait "$w" 2>/dev/null

c web1 status --json > "$T/status"
validate status.json "$T/status" || fail "status --json: $(cat "$T/status")"
c web1 peers --json > "$T/peers"
validate peers.json "$T/peers" || fail "peers --json: $(cat "$T/peers")"
validate event.json "$T/events" || fail "watch --json: $(cat "$T/events")"
ok "status --json, peers --json and watch --json match their schemas"

{
  request web1 '{"cmd":"set","state":"ready","reason":"r","data":{"a":"b"}}'
  request web1 '{"cmd":"set","state":"drain","for_ms":60000}'
  request web1 '{"cmd":"set","state":"lost"}'
} > "$T/set"
grep -q '"until"' "$T/set" || fail "no until in a set --for reply: $(cat "$T/set")"
validate set-reply.json "$T/set" || fail "set replies: $(cat "$T/set")"
c web1 status --json > "$T/status2"
jq -e '.declared.until > 0' "$T/status2" >/dev/null || fail "no declared.until"
validate status.json "$T/status2" || fail "status with an expiry: $(cat "$T/status2")"
request web1 '{"cmd":"version"}' > "$T/version"
validate version-reply.json "$T/version" || fail "version: $(cat "$T/version")"
"$CHOREO_BIN" version --json > "$T/version_cli" || fail "version --json"
validate version.json "$T/version_cli" || fail "version --json: $(cat "$T/version_cli")"
request web1 '{"cmd":"reload"}' > "$T/reload"
printf 'node:\n  name: web1\n  bogus: 1\n' > "$T/web1.yaml"
request web1 '{"cmd":"reload"}' >> "$T/reload"
grep -q '"applied":false' "$T/reload" || fail "no refused reload: $(cat "$T/reload")"
validate reload-reply.json "$T/reload" || fail "reload: $(cat "$T/reload")"
{
  request web1 '{"cmd":"force-leave","node":"db1"}'
  request web1 '{"cmd":"force-leave","node":"db1"}'
  request web1 '{"cmd":"force-leave","node":7}'
} > "$T/fl"
validate force-leave-reply.json "$T/fl" || fail "force-leave: $(cat "$T/fl")"
ok "control replies (set, set with for_ms, version, version --json, reload, force-leave, errors) match their schemas"

# The schemas can fail: a status without "declared", an event of an
# unknown kind, a PEER with a bad state.
jq -c 'del(.declared)' "$T/status" > "$T/bad1"
validate status.json "$T/bad1" 2>/dev/null && fail "a status without declared validated"
head -1 "$T/events" | jq -c '.event = "exploded"' > "$T/bad2"
validate event.json "$T/bad2" 2>/dev/null && fail "an unknown event validated"
jq -c '.[0].state = "NOT A STATE"' "$T/peers" > "$T/bad3"
validate peers.json "$T/bad3" 2>/dev/null && fail "a bad state validated"
ok "documents that break a schema are refused"
