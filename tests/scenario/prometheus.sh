#!/usr/bin/env bash
# Prometheus scrapes the agent: Debian's prometheus, started on loopback
# with a temporary configuration scraping GET /metrics every second; after
# a state change on db1, a PromQL query through Prometheus's HTTP API
# finds choreo_peer_state{peer="db1",state="maintenance"} == 1, and the
# exposition parses with no scrape error.
source "$(dirname "$0")/lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s
command -v prometheus >/dev/null || fail "prometheus is not installed (scripts/deps.sh)"

pdb=$(free_port); pw=$(free_port); ph=$(free_port); pp=$(free_port)
write_config db1 "$pdb" "[db]" "[]"
write_config web1 "$pw" "[web]" "[tcp://127.0.0.1:$pdb]" "http:
  listen: 127.0.0.1:$ph"
start_agent db1
start_agent web1
wait_for "web1 sees db1" 10 sees web1 db1 ready

cat >"$T/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: choreo
    static_configs:
      - targets: ['127.0.0.1:$ph']
YAML
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" \
  --web.listen-address="127.0.0.1:$pp" >"$T/prometheus.log" 2>&1 &
AGENT_PID[prometheus]=$! # killed at exit with the agents
API=http://127.0.0.1:$pp/api/v1

# query PROMQL: the number of series in the instant vector it returns.
query() { curl -s -G "$API/query" --data-urlencode "query=$1" | jq -r '.data.result | length'; }
scrape_up() { [ "$(curl -s -G "$API/targets" | jq -r '.data.activeTargets[0].health')" = up ]; }

wait_for "prometheus scrapes the agent" 30 scrape_up
[ "$(curl -s -G "$API/targets" | jq -r '.data.activeTargets[0].lastError')" = "" ] || fail "scrape error"
wait_for "db1 ready in prometheus" 10 test "$(query 'choreo_peer_state{peer="db1",state="ready"} == 1')" = 1
ok "prometheus scrapes GET /metrics without error and sees db1 ready"

c db1 set maintenance --reason "disk swap" || fail "set"
in_maintenance() { [ "$(query 'choreo_peer_state{peer="db1",state="maintenance"} == 1')" = 1 ]; }
wait_for "db1 in maintenance in prometheus" 15 in_maintenance
ok 'PromQL: choreo_peer_state{peer="db1",state="maintenance"} == 1 after the change'

# An alert expression of docs/OPERATIONS.md: the age is there to compare.
[ "$(query 'choreo_peer_state_age_seconds{peer="db1"} < 60')" = 1 ] || fail "no state age"
[ "$(query 'choreo_build_info == 1')" = 1 ] || fail "no build info"
[ "$(query 'rate(choreo_messages_received_total[5s]) >= 0')" = 1 ] || fail "counters not usable with rate()"
ok "state age, build info and counters are queryable"
