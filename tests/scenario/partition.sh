#!/usr/bin/env bash
# A partition in Linux network namespaces: three test hosts (db1, web1,
# web2) on a bridge, each agent in its own namespace. Cut db1 off, change
# its state during the cut, heal: both sides converge to the right state and
# every behaviour's last action matches the final truth.
source "$(dirname "$0")/lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s

NS=ch$$
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "needs iproute2"
ip netns add "${NS}br" 2>/dev/null || skip "cannot create network namespaces here"

teardown() {
  for n in db1 web1 web2 br; do ip netns del "$NS$n" 2>/dev/null || true; done
}
trap 'cleanup; teardown' EXIT

# The test hosts' own private addresses, inside the namespaces only.
ip -n "${NS}br" link add br0 type bridge
ip -n "${NS}br" link set br0 up
i=1
for n in db1 web1 web2; do
  ip netns add "$NS$n"
  ip link add "v$n$$" type veth peer name "b$n$$"
  ip link set "v$n$$" netns "$NS$n"
  ip link set "b$n$$" netns "${NS}br"
  ip -n "${NS}br" link set "b$n$$" master br0 up
  ip -n "$NS$n" addr add "10.231.$(( $$ % 200 )).$i/24" dev "v$n$$"
  ip -n "$NS$n" link set "v$n$$" up
  ip -n "$NS$n" link set lo up
  eval "ADDR_$n=10.231.$(( $$ % 200 )).$i"
  i=$((i + 1))
done

cat > "$T/record.sh" <<'SH'
#!/bin/sh
echo "$CHOREO_EVENT" >> "$EVENTS_DIR/$CHOREO_NODE.events"
SH
chmod +x "$T/record.sh"
export EVENTS_DIR=$T
behaviour='behaviours:
  - name: holding-page
    peers: {group: db}
    when: {any: maintenance}
    run: ['"$T"'/record.sh]
    revert: ['"$T"'/record.sh]'

net_config() { # net_config NAME GROUPS JOIN [EXTRA]
  local addr_var="ADDR_$1"
  write_config "$1" 7410 "$2" "$3" "${4:-}"
  sed -i "s|listen: tcp://127.0.0.1:7410|listen: tcp://${!addr_var}:7410\n  insecure: true|" "$T/$1.yaml"
}
net_config db1 "[db]" "[]"
net_config web1 "[web]" "[tcp://$ADDR_db1:7410]" "$behaviour"
net_config web2 "[web]" "[tcp://$ADDR_db1:7410]" "$behaviour"

start_in_ns() {
  ip netns exec "$NS$1" "$CHOREO_BIN" agent -c "$T/$1.yaml" >>"$T/$1.log" 2>&1 &
  AGENT_PID[$1]=$!
  wait_for "$1 answers" 10 c "$1" status
}
start_in_ns db1; start_in_ns web1; start_in_ns web2
for n in db1 web1 web2; do wait_for "$n sees 3" 10 has_members "$n" 3; done
ok "three hosts in their own network namespaces joined"

# Cut db1 from the bridge.
ip -n "${NS}br" link set "bdb1$$" down
for w in web1 web2; do wait_for "$w sees db1 lost" 10 sees "$w" db1 lost; done
wait_for "db1 sees web1 lost" 10 sees db1 web1 lost
c db1 set maintenance --reason "during the cut" || fail "set during the cut"
settled web1 5
for w in web1 web2; do
  sees "$w" db1 lost || fail "$w learnt db1's state through a cut link"
  has_lines "$T/$w.events" "^run" 0 || fail "$w ran during the cut"
done
ok "during the cut: db1 is lost to the webservers, nothing runs"

ip -n "${NS}br" link set "bdb1$$" up
for w in web1 web2; do
  wait_for "$w sees db1 in maintenance after the heal" 20 sees "$w" db1 maintenance
  wait_for "$w runs once" 10 has_lines "$T/$w.events" "^run" 1
done
for w in web1 web2; do wait_for "db1 sees $w ready" 20 sees db1 "$w" ready; done
ok "heal: both sides converge, the webservers run once"

c db1 set ready || fail "set ready"
for w in web1 web2; do wait_for "$w reverts" 10 has_lines "$T/$w.events" "^revert" 1; done
settled web1 5
for w in web1 web2; do
  [ "$(tail -n 1 "$T/$w.events")" = revert ] || fail "$w's last action isn't revert: $(cat "$T/$w.events")"
  [ "$(wc -l < "$T/$w.events")" = 2 ] || fail "$w: $(cat "$T/$w.events")"
done
ok "every behaviour's last action matches the final truth"
