#!/usr/bin/env bash
# SIGHUP reloads the configuration: a broken file is logged with
# FILE:LINE:COL and the old behaviours keep running; a new behaviour starts
# without rerunning the unchanged ones.
source "$(dirname "$0")/lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s

cat > "$T/record.sh" <<'SH'
#!/bin/sh
echo "$CHOREO_EVENT $CHOREO_PEER" >> "$EVENTS_DIR/$CHOREO_NODE.$CHOREO_BEHAVIOUR"
SH
chmod +x "$T/record.sh"
export EVENTS_DIR=$T

b1='behaviours:
  - name: first
    peers: {group: db}
    when: {any: maintenance}
    run: ['"$T"'/record.sh]
    revert: ['"$T"'/record.sh]'
b2="$b1"'
  - name: second
    peers: {group: db}
    when: {any: maintenance}
    run: ['"$T"'/record.sh]
    revert: ['"$T"'/record.sh]'

pdb=$(free_port); pw=$(free_port)
write_config db1 "$pdb" "[db]" "[]"
write_config web1 "$pw" "[web]" "[tcp://127.0.0.1:$pdb]" "$b1"
start_agent db1
start_agent web1
wait_for "web1 sees db1" 10 sees web1 db1 ready
c db1 set maintenance || fail "set"
wait_for "first runs" 5 has_lines "$T/web1.first" "^run db1" 1

# A broken file: logged with its position, the old behaviours stay.
cp "$T/web1.yaml" "$T/web1.good"
printf 'node:\n  name: web1\n  bogus: 1\n' > "$T/web1.yaml"
kill -HUP "${AGENT_PID[web1]}"
wait_for "the reload error is logged" 5 grep -q "reload: $T/web1.yaml:3:3: " "$T/web1.log"
c db1 set ready || fail "set ready"
wait_for "first still reverts" 5 has_lines "$T/web1.first" "^revert db1" 1
kill -0 "${AGENT_PID[web1]}" || fail "web1 died on a bad reload"
ok "SIGHUP with a broken file: logged with FILE:LINE:COL, old behaviours keep running"

# A new behaviour: it starts (runs, since its condition holds) and the
# unchanged one does not run again.
c db1 set maintenance || fail "set maintenance"
wait_for "first runs again" 5 has_lines "$T/web1.first" "^run db1" 2
write_config web1 "$pw" "[web]" "[tcp://127.0.0.1:$pdb]" "$b2"
kill -HUP "${AGENT_PID[web1]}"
wait_for "second runs" 5 has_lines "$T/web1.second" "^run" 1
settled web1 5
has_lines "$T/web1.first" "^run" 2 || fail "first ran again on reload: $(cat "$T/web1.first")"
c db1 set ready || fail "set ready"
wait_for "both revert" 5 has_lines "$T/web1.second" "^revert db1" 1
wait_for "both revert" 5 has_lines "$T/web1.first" "^revert db1" 2
ok "SIGHUP with a new behaviour starts it without rerunning the others"

# A setting that needs a restart is named in the log.
sed -i "s|listen: tcp://127.0.0.1:$pw|listen: tcp://127.0.0.1:$(free_port)|" "$T/web1.yaml"
kill -HUP "${AGENT_PID[web1]}"
wait_for "restart-only setting logged" 5 grep -q "network.listen changed; it takes effect at the next restart" "$T/web1.log"
c web1 status >/dev/null || fail "web1 stopped answering"
ok "settings that need a restart are named in the log"
