#!/usr/bin/env bash
# Own state survives kill -9 and restart, and every peer learns it again.
source "$(dirname "$0")/lib.sh"

pdb=$(free_port); pw=$(free_port)
NODE_EXTRA='  data: {role: primary}' write_config db1 "$pdb" "[db]" "[]"
write_config web1 "$pw" "[web]" "[tcp://127.0.0.1:$pdb]"

start_agent db1
start_agent web1
wait_for "web1 sees db1" 10 sees web1 db1 ready

c db1 set maintenance --reason "disk swap" --data version=42 || fail "set"
wait_for "web1 sees db1 in maintenance" 10 sees web1 db1 maintenance
kill_agent db1 KILL
wait_for "web1 sees db1 lost" 10 sees web1 db1 lost
ok "kill -9 makes db1 lost"

start_agent db1
wait_for "db1 restored its state" 10 sees db1 db1 maintenance
st=$(c db1 status --json)
echo "$st" | jq -e '.node.reason == "disk swap" and .node.data.version == "42" and .node.data.role == "primary"' >/dev/null ||
  fail "restored reason/data wrong: $st"
wait_for "web1 sees db1 in maintenance again" 10 sees web1 db1 maintenance
ok "state, reason and data survive kill -9 and restart, and peers learn them"

c db1 set ready || fail "set ready"
wait_for "web1 sees db1 ready" 10 sees web1 db1 ready
ok "a restarted node's new records win over its old ones"
