#!/usr/bin/env bash
# The fleet page in a real browser: headless Chromium loads GET / from an
# agent, shows every node as a tile, and a state change on db1 shows up in
# the DOM within 1 s, without a reload (from the event stream); a peer's
# reason with markup is shown as text. A screenshot is kept as an
# artifact: $CHOREO_BUILD/http_browser.png.
source "$(dirname "$0")/lib.sh"
export HEARTBEAT=200ms LOST_AFTER=1s
# Debian's python3, where python3-websocket is installed.
CDP="/usr/bin/python3 $(dirname "$0")/cdp.py"
command -v chromium >/dev/null || fail "chromium is not installed (scripts/deps.sh)"

pdb=$(free_port); pw=$(free_port); ph=$(free_port); pc=$(free_port)
write_config db1 "$pdb" "[db]" "[]"
write_config web1 "$pw" "[web]" "[tcp://127.0.0.1:$pdb]" "http:
  listen: 127.0.0.1:$ph"
start_agent db1
start_agent web1
wait_for "web1 sees db1" 10 sees web1 db1 ready

chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run \
  --user-data-dir="$(mktemp -d "$T/chromium.XXXXXX")" --window-size=1280,720 \
  --remote-debugging-port="$pc" "http://127.0.0.1:$ph/" >"$T/chromium.log" 2>&1 &
AGENT_PID[chromium]=$! # killed at exit with the agents

tile='(document.querySelector(".tile[data-node=\"db1\"]") || {dataset: {}}).dataset.state'
$CDP "$pc" wait "$tile" ready 20 || fail "the page never showed db1 ready"
$CDP "$pc" wait 'document.querySelectorAll(".tile").length' 2 5 || fail "not one tile per node"
$CDP "$pc" wait 'document.getElementById("conn").textContent' live 5 || fail "the page is not following the event stream"
ok "the fleet page shows every node as a tile"

ms=$($CDP "$pc" change "$tile" maintenance 5 -- "$CHOREO_BIN" set maintenance \
  --socket "$T/db1.sock" --reason '<b>disk</b> swap') || fail "db1's change never reached the page: $ms"
echo "# db1's change reached the page's DOM in $ms ms"
[ "$ms" -lt 1000 ] || fail "db1's change took $ms ms to reach the page"
ok "a state change on db1 shows on the page within 1 s, without a reload ($ms ms)"

reason='document.querySelector(".tile[data-node=\"db1\"] .reason").textContent'
[ "$($CDP "$pc" eval "$reason")" = "<b>disk</b> swap" ] || fail "the reason is not shown as text"
[ "$($CDP "$pc" eval 'document.querySelectorAll(".tile b").length')" = 0 ] || fail "peer markup was rendered"
$CDP "$pc" wait 'document.querySelectorAll("#timeline li").length > 0' True 5 || fail "no timeline entry"
ok "peer text is shown as text (no markup), and the change is in the timeline"

shot=${CHOREO_BUILD:-$T}/http_browser.png
$CDP "$pc" shot "$shot" || fail "no screenshot"
[ "$(head -c 4 "$shot" | od -An -c | tr -d ' ')" = "211PNG" ] || fail "the screenshot is not a PNG"
echo "# screenshot: $shot"
ok "a screenshot of the page is saved"
