#!/usr/bin/env bash
# Hostile clients on the control socket (docs/PROTOCOL.md "Control socket"):
# a line longer than the limit, garbage of every kind, a line never
# finished, a client that connects and says nothing, more clients than
# allowed. Each gets an error or is disconnected, alone: the agent and its
# other clients carry on.
source "$(dirname "$0")/lib.sh"

p1=$(free_port)
write_config n1 "$p1" "[db]" "[]"
start_agent n1

# /usr/bin/python3: Debian's, whatever python3 comes first in PATH.
/usr/bin/python3 - "$T/n1.sock" <<'PY' || fail "control socket abuse (see above)"
import json, select, socket, sys, time

path = sys.argv[1]
failed = False

def check(cond, what):
    global failed
    if cond:
        print("ok - " + what)
    else:
        print("FAIL: " + what)
        failed = True

def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)  # blocking: waits for room in the agent's backlog
    s.settimeout(5)
    return s

def read_line(s, buf):
    """One reply line from s (buf: bytes already read); None at EOF."""
    while b"\n" not in buf[0]:
        data = s.recv(65536)
        if not data:
            return None
        buf[0] += data
    line, buf[0] = buf[0].split(b"\n", 1)
    return json.loads(line)

def until_eof(s, timeout):
    """Replies until the agent closes s; None if it doesn't within timeout."""
    s.settimeout(timeout)
    buf, replies = [b""], []
    try:
        while True:
            r = read_line(s, buf)
            if r is None:
                return replies
            replies.append(r)
    except ConnectionResetError:
        return replies  # closed with our bytes unread: still the end
    except socket.timeout:
        return None

def ask(s, req, buf=None):
    buf = buf if buf is not None else [b""]
    s.sendall(req if isinstance(req, bytes) else (json.dumps(req) + "\n").encode())
    return read_line(s, buf)

# Opened first, silent throughout: it must not be harmed by the others.
idle = connect()
# A line never finished: dropped after 10 s (CONTROL_IDLE_MS).
partial = connect()
partial.sendall(b'{"cmd":"stat')
partial_at = time.monotonic()
# The same, with a byte now and then: the clock runs from the line's first
# byte, so trickling doesn't keep the connection (and its slot) alive.
trickle = connect()
trickle.sendall(b'{"cmd":')
trickle_at, trickle_next = time.monotonic(), time.monotonic() + 1

# 100 KB without a newline: an error, then that client alone is closed.
big = connect()
try:
    big.sendall(b"x" * 100000)
except (BrokenPipeError, ConnectionResetError):
    pass
replies = until_eof(big, 5)
check(replies is not None and len(replies) == 1 and replies[0]["ok"] is False
      and "too long" in replies[0]["error"],
      "a 100 KB line without a newline: an error reply, then disconnected")

# Garbage: one error per line, and the connection stays usable.
g = connect()
buf = [b""]
deep = b"[" * 30000 + b"]" * 30000
lines = [b"garbage", b"\xff\xfe\x00\x01 binary", b"[1,2]", b'"str"',
         b'{"cmd":42}', b'{"cmd":"nope"}', b'{"cmd":"set"}',
         b'{"cmd":"set","state":"BAD STATE"}',
         b'{"cmd":"set","state":"x","data":{"K":"v"}}',
         b'{"cmd":"set","state":"x","reason":"\xff"}',
         b'{"cmd":"status","cmd":"status"}', b'{"cmd":"peers","group":7}', deep]
g.sendall(b"\n".join(lines) + b"\n")
errs = [read_line(g, buf) for _ in lines]
check(all(r is not None and r["ok"] is False and r["error"] for r in errs),
      "%d kinds of garbage: one error reply each" % len(lines))
r = ask(g, {"cmd": "version"}, buf)
check(r is not None and r["ok"] is True, "the client that sent garbage is still served")

# The longest request allowed (CHOREO_REQUEST_MAX), padded with blanks,
# and one byte more.
req = b'{"cmd":"version"}'
r = ask(connect(), req + b" " * (65536 - len(req)) + b"\n")
check(r is not None and r["ok"] is True, "a 65536-byte request line is answered")
s = connect()
s.sendall(req + b" " * (65537 - len(req)) + b"\n")
replies = until_eof(s, 5)
check(replies is not None and len(replies) == 1 and "too long" in replies[0]["error"],
      "a 65537-byte request line: an error reply, then disconnected")

# A client that sends its request and closes its side still gets the reply.
s = connect()
s.sendall(b'{"cmd":"metrics"}\n{"cmd":"status"}\n')
s.shutdown(socket.SHUT_WR)
replies = until_eof(s, 5)
check(replies is not None and len(replies) == 2 and all(r["ok"] for r in replies),
      "requests then a half-close: both replies, then closed")

# More clients than allowed: the extra ones are closed, the agent lives.
crowd = [connect() for _ in range(300)]
closed, waiting, deadline = 0, set(crowd), time.monotonic() + 2
while waiting and time.monotonic() < deadline:
    ready, _, _ = select.select(list(waiting), [], [], 0.1)
    for s in ready:
        waiting.discard(s)
        try:
            closed += s.recv(1) == b""
        except ConnectionResetError:
            closed += 1
for s in crowd:
    s.close()
check(closed >= 300 - 256, "300 clients at once: %d beyond the limit closed" % closed)
time.sleep(0.2)  # let the agent see the crowd leave before asking again

# The trickling line: closed about 10 s after its first byte.
while time.monotonic() - trickle_at < 20:
    if time.monotonic() >= trickle_next:
        try:
            trickle.sendall(b" ")
        except (BrokenPipeError, ConnectionResetError):
            break
        trickle_next += 1
    ready, _, _ = select.select([trickle], [], [], 0.1)
    if ready:
        break
replies = until_eof(trickle, 5)
waited = time.monotonic() - trickle_at
check(replies is not None and len(replies) == 1 and "unfinished" in replies[0]["error"]
      and 9 <= waited <= 15,
      "a line trickling in a byte a second: error and disconnected after %.1f s" % waited)

# The never-finished line: an error, then closed, about 10 s after it began.
replies = until_eof(partial, 20)
waited = time.monotonic() - partial_at
check(replies is not None and len(replies) == 1 and "unfinished" in replies[0]["error"]
      and 9 <= waited <= 15,
      "a line left unfinished: error and disconnected after %.1f s" % waited)

# The silent client is still connected and served.
r = ask(idle, {"cmd": "status"})
check(r is not None and r["ok"] is True and r["node"]["name"] == "n1",
      "the silent client is still served after all that")
sys.exit(1 if failed else 0)
PY

c n1 status >/dev/null || fail "the CLI is not served after the abuse"
errors=$(metric n1 choreo_control_errors_total)
[ "${errors:-0}" -ge 10 ] || fail "choreo_control_errors_total is ${errors:-0}"
kill -0 "${AGENT_PID[n1]}" || fail "n1 died"
ok "after the abuse the agent answers the CLI and has counted $errors control errors"
