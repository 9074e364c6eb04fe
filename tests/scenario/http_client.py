#!/usr/bin/env python3
"""http_client.py: the raw-socket clients of tests/scenario/http.sh, for
what curl can't do (hold many idle connections, never read a stream,
send malformed bytes, flood the control socket with sets).

  raw PORT HEX                  send the bytes, print the status line
  idle PORT N SECONDS PIDFILE   hold N connections open (sending nothing),
                                paced so at most 640 wait unanswered;
                                print how many were answered (503/closed)
  sink PORT READY               GET /v1/events with a tiny receive buffer,
                                touch READY, then never read; exit when
                                the agent closes the connection
  sets SOCKET N                 N `set` requests (alternating states, long
                                reasons) on one control connection
"""
import json
import os
import select
import socket
import sys
import time


def raw(port, data):
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        s.sendall(data)
    except OSError:
        pass  # the agent may answer and close before reading it all
    buf = b""
    try:
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    except OSError:
        pass
    print(buf.split(b"\r\n", 1)[0].decode("latin-1"))


def idle(port, n, secs, pidfile):
    # Paced by what the agent answers: never more than WINDOW connections
    # unanswered beyond the agent's bound, so none waits in (or falls out
    # of) the kernel's listen backlog, however slow the machine.
    window = 512 + 128
    socks = {}
    answered = set()
    p = select.poll()
    deadline = time.time() + 60

    def collect(timeout_ms):
        for fd, _ in p.poll(timeout_ms):
            answered.add(fd)
            p.unregister(fd)

    for _ in range(n):
        while len(socks) - len(answered) >= window and time.time() < deadline:
            collect(100)
        s = socket.socket()
        s.connect(("127.0.0.1", port))
        socks[s.fileno()] = s
        p.register(s, select.POLLIN | select.POLLHUP)
        collect(0)
    collect(500)
    print(len(answered), flush=True)  # answered (503) or closed
    with open(pidfile, "w") as f:
        f.write("ready\n")
    time.sleep(secs)


def sink(port, ready):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
    open(ready, "w").close()
    # Never read: wait until the agent gives up on us (the socket then
    # errors or shows EOF pending, which poll sees without reading).
    p = select.poll()
    p.register(s, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    deadline = time.time() + 120
    while time.time() < deadline:
        if p.poll(200):
            print("closed")
            return
    print("still open")


def sets(path, n):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    f = s.makefile("rwb")
    for i in range(n):
        req = {"cmd": "set", "state": "maintenance" if i % 2 == 0 else "ready",
               "reason": ("r%d " % i) + "x" * 240}
        f.write(json.dumps(req).encode() + b"\n")
        f.flush()
        f.readline()


def main():
    cmd = sys.argv[1]
    if cmd == "raw":
        raw(int(sys.argv[2]), bytes.fromhex(sys.argv[3]))
    elif cmd == "idle":
        idle(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
    elif cmd == "sink":
        sink(int(sys.argv[2]), sys.argv[3])
    elif cmd == "sets":
        sets(sys.argv[2], int(sys.argv[3]))


if __name__ == "__main__":
    main()
