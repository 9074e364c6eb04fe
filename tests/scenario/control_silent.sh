#!/usr/bin/env bash
# A client that connects and never says anything holds one of the control
# socket's 256 places: it is closed after 60 s of silence (docs/PROTOCOL.md
# "Control socket"). A watcher, silent by nature, is not.
source "$(dirname "$0")/lib.sh"

p1=$(free_port)
write_config n1 "$p1" "[db]" "[]"
start_agent n1

/usr/bin/python3 - "$T/n1.sock" <<'PY' || fail "silent clients (see above)"
import json, socket, sys, time

path = sys.argv[1]

def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s

silent, watcher, busy = connect(), connect(), connect()
busy_in = busy.makefile("rb")
watcher_in = watcher.makefile("rb")
t0 = time.monotonic()
watcher.sendall(b'{"cmd":"watch"}\n')
watcher.settimeout(5)
assert json.loads(watcher_in.readline())["ok"], "watch refused"

def ask_busy():
    busy.settimeout(5)
    busy.sendall(b'{"cmd":"version"}\n')
    return json.loads(busy_in.readline())["ok"]

# busy asks something every 20 s: never silent for 60 s.
closed_after, busy_ok, next_ask = None, True, t0 + 20
while time.monotonic() - t0 < 90:
    silent.settimeout(max(0.05, next_ask - time.monotonic()))
    try:
        if silent.recv(1) == b"":
            closed_after = time.monotonic() - t0
            break
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed_after = time.monotonic() - t0
        break
    if time.monotonic() >= next_ask:
        busy_ok = busy_ok and ask_busy()
        next_ask += 20

failed = False
def check(cond, what):
    global failed
    print(("ok - " if cond else "FAIL: ") + what)
    failed = failed or not cond

check(closed_after is not None and 58 <= closed_after <= 70,
      "a silent client is closed after %s s" %
      (None if closed_after is None else round(closed_after, 1)))
check(busy_ok and ask_busy(), "a client that asks every 20 s is still served")
watcher.settimeout(0.5)
try:
    alive = watcher.recv(1) != b""
except socket.timeout:
    alive = True
check(alive, "the watcher is still connected")
sys.exit(1 if failed else 0)
PY
kill -0 "${AGENT_PID[n1]}" || fail "n1 died"
ok "silent clients are closed, watchers and busy clients kept"
