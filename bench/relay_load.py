#!/usr/bin/env python3
"""What a relay's CPU pays per message it takes in, as the load grows:
one real relay agent (heartbeat 1 s, no key, network.max_members large
enough) and one sender that plays LEAVES leaves through nanomsg PUB
sockets: each leaf's heartbeat, a `state` of an unchanged record with
"leaf": true and its sequence number one up, to the relay's inbox, the
leaves in turn, at each RATE messages a second for --seconds. For each
rate: the messages the relay received (choreo_messages_received_total)
and its CPU time (utime + stime of /proc/PID/stat) over that interval,
so the CPU per message and the share of a core.

At a low rate every message arrives at an idle agent and wakes its
threads (nanomsg's worker and the loop); under load the loop drains
what is queued, several messages a wake-up (mesh.c). tests/sim models
the first as --wake-us a delivery; this measures what a message costs
when the relay is busy. Needs two cores (the relay and the sender each
take one); the sender reports when it could not keep the rate.

  bench/relay_load.py --choreo build/choreo [--leaves 5000]
      [--rates 1000 2000 4000 8000 16000] [--seconds 5] [--burst K]
      [--json]

--burst K sends K messages back to back, then waits for the rate: the
relay then drains them together.
"""
import argparse
import ctypes
import ctypes.util
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

AF_SP = 1
NN_PUB = 32
NN_SOL_SOCKET = 0
NN_SNDBUF = 2


def nanomsg():
    nn = ctypes.CDLL(ctypes.util.find_library("nanomsg") or "libnanomsg.so.5")
    nn.nn_send.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t,
                           ctypes.c_int]
    nn.nn_connect.argtypes = [ctypes.c_int, ctypes.c_char_p]
    nn.nn_setsockopt.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                 ctypes.c_void_p, ctypes.c_size_t]
    return nn


def heartbeat(name, inc, seq, now, sink):
    m = {"v": 1, "cluster": "bench", "from": name, "inc": inc, "seq": seq,
         "time": now, "type": "state", "leaf": True, "proto": 2,
         "digest": "0000000000000000", "known": 2,
         "rec": {"addr": sink, "ver": 1, "left": False, "state": "ready",
                 "reason": "", "since": inc * 1000, "groups": ["web"],
                 "data": {"role": "web", "port": "8080"}}}
    return json.dumps(m, separators=(",", ":")).encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--choreo", required=True)
    ap.add_argument("--leaves", type=int, default=5000)
    ap.add_argument("--rates", type=int, nargs="+",
                    default=[1000, 2000, 4000, 8000, 16000])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--burst", type=int, default=1,
                    help="messages sent back to back between pauses "
                         "(1: paced one at a time)")
    ap.add_argument("--sockets", type=int, default=4,
                    help="PUB sockets the leaves are spread over")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    harness.raise_nofile()

    c = harness.Cluster(a.choreo)
    port = harness.free_port()
    inbox = f"tcp://127.0.0.1:{port}"
    # Every played leaf gives the same address: one connection of the
    # relay's, to a port where nobody listens.
    sink = f"tcp://127.0.0.1:{harness.free_port()}"
    path = c.config("relay", port, "web", join=[], relay=True)
    # room for every played leaf, in the network block
    with open(path) as f:
        text = f.read()
    text = text.replace("  relay: true\n",
                        f"  relay: true\n  max_members: {a.leaves + 100}\n")
    with open(path, "w") as f:
        f.write(text)
    c.start("relay")
    pid = c.procs["relay"].pid
    sock = c.sock("relay")
    nn = nanomsg()
    rows = []
    try:
        harness.wait_until(lambda: c.status("relay") is not None, 10,
                           "the relay's control socket")
        socks = []
        for _ in range(a.sockets):
            s = nn.nn_socket(AF_SP, NN_PUB)
            buf = ctypes.c_int(4 * 1024 * 1024)
            nn.nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDBUF, ctypes.byref(buf),
                             ctypes.sizeof(buf))
            if s < 0 or nn.nn_connect(s, inbox.encode()) < 0:
                raise SystemExit(f"relay_load: cannot connect to {inbox}")
            socks.append(s)
        time.sleep(0.5)  # PUB drops what it sends before it is connected
        inc = int(time.time()) - 5
        names = [f"leaf{i:05d}" for i in range(a.leaves)]
        seq = [0] * a.leaves
        k = 0

        def send_for(rate, seconds):
            nonlocal k
            gap = 1.0 / rate
            t0 = time.monotonic()
            sent = 0
            n = int(rate * seconds)
            while sent < n:
                i = k % a.leaves
                seq[i] += 1
                m = heartbeat(names[i], inc, seq[i], int(time.time() * 1000),
                              sink)
                nn.nn_send(socks[i % len(socks)], m, len(m), 0)
                k += 1
                sent += 1
                if sent % a.burst == 0:
                    late = t0 + sent * gap - time.monotonic()
                    if late > 0:
                        time.sleep(late)
            return sent, time.monotonic() - t0

        # Every leaf heard once, and the catch-up that follows over.
        send_for(min(a.rates), a.leaves / min(a.rates))
        time.sleep(3)
        for rate in a.rates:
            rx0 = harness.metric(sock, "choreo_messages_received_total")
            cpu0 = harness.cpu_seconds(pid)
            sent, took = send_for(rate, a.seconds)
            # what is still queued is taken in, and counted
            time.sleep(0.3)
            rx1 = harness.metric(sock, "choreo_messages_received_total")
            cpu1 = harness.cpu_seconds(pid)
            got = (rx1 or 0) - (rx0 or 0)
            cpu = cpu1 - cpu0
            rows.append({"rate": rate, "sent": sent,
                         "sent_per_s": round(sent / took),
                         "received": int(got),
                         "cpu_s": round(cpu, 3),
                         "us_per_msg": round(cpu / got * 1e6, 1)
                         if got else None,
                         "core_pct": round(100 * cpu / (took + 0.3), 1)})
    finally:
        for s in locals().get("socks", []):
            nn.nn_close(s)
        c.stop()
    if a.json:
        print(json.dumps({"machine": harness.machine(), "leaves": a.leaves,
                          "rows": rows}))
        return
    print(f"relay, {a.leaves} leaves played, {a.seconds:g} s a rate, "
          f"bursts of {a.burst}")
    print(f"{'rate/s':>8} {'sent/s':>8} {'received':>9} {'µs/msg':>7} "
          f"{'core %':>7}")
    for r in rows:
        print(f"{r['rate']:>8} {r['sent_per_s']:>8} {r['received']:>9} "
              f"{r['us_per_msg']!s:>7} {r['core_pct']:>7}")


if __name__ == "__main__":
    main()
