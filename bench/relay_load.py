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
      [--members P] [--json]

--burst K sends K messages back to back, then waits for the rate: the
relay then drains them together. Each leaf must be heard within the
relay's lost_after (10 s) at the lowest rate, or the relay would judge
leaves lost and revive them, which is other work: LEAVES is at most 5
times the lowest rate. --members P gives P of the leaves inboxes of
their own, which this script reads, and runs each rate twice: unchanged
heartbeats, then every message a new version, which the relay passes on
to every member in batches; the difference in the relay's CPU over the
copies the members received is what each copy sent costs it.
"""
import argparse
import ctypes
import ctypes.util
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

AF_SP = 1
NN_PUB = 32
NN_SUB = 33
NN_SUB_SUBSCRIBE = 1
NN_MSG = ctypes.c_size_t(-1).value
NN_DONTWAIT = 1
NN_POLLIN = 1
NN_SOL_SOCKET = 0
NN_SNDBUF = 2


class NnPollFd(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_short),
                ("revents", ctypes.c_short)]


def nanomsg():
    nn = ctypes.CDLL(ctypes.util.find_library("nanomsg") or "libnanomsg.so.5")
    nn.nn_bind.argtypes = [ctypes.c_int, ctypes.c_char_p]
    nn.nn_recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t,
                           ctypes.c_int]
    nn.nn_freemsg.argtypes = [ctypes.c_void_p]
    nn.nn_poll.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    nn.nn_send.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t,
                           ctypes.c_int]
    nn.nn_connect.argtypes = [ctypes.c_int, ctypes.c_char_p]
    nn.nn_setsockopt.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                 ctypes.c_void_p, ctypes.c_size_t]
    return nn


class Inboxes:
    """n inboxes (SUB sockets bound on loopback) that a thread reads as
    fast as messages come, counting them: members that keep up."""

    def __init__(self, nn, n):
        self.nn = nn
        self.socks = []
        self.addrs = []
        self.received = 0
        self.stop = False
        for _ in range(n):
            s = nn.nn_socket(AF_SP, NN_SUB)
            addr = f"tcp://127.0.0.1:{harness.free_port()}"
            if s < 0 or nn.nn_setsockopt(s, NN_SUB, NN_SUB_SUBSCRIBE, b"",
                                         0) < 0 or \
                    nn.nn_bind(s, addr.encode()) < 0:
                raise SystemExit(f"relay_load: cannot bind {addr}")
            self.socks.append(s)
            self.addrs.append(addr)
        self.thread = threading.Thread(target=self.run, daemon=True)
        if n > 0:
            self.thread.start()

    def run(self):
        nn = self.nn
        fds = (NnPollFd * len(self.socks))(
            *[NnPollFd(s, NN_POLLIN, 0) for s in self.socks])
        buf = ctypes.c_void_p()
        while not self.stop:
            if nn.nn_poll(fds, len(self.socks), 100) <= 0:
                continue
            for f in fds:
                if not f.revents & NN_POLLIN:
                    continue
                while nn.nn_recv(f.fd, ctypes.byref(buf), NN_MSG,
                                 NN_DONTWAIT) >= 0:
                    nn.nn_freemsg(buf)
                    self.received += 1

    def close(self):
        self.stop = True
        if self.thread.is_alive():
            self.thread.join()
        for s in self.socks:
            self.nn.nn_close(s)


def heartbeat(name, inc, seq, now, addr, ver=1):
    m = {"v": 1, "cluster": "bench", "from": name, "inc": inc, "seq": seq,
         "time": now, "type": "state", "leaf": True, "proto": [0, 2],
         "digest": "0000000000000000", "known": 2,
         "rec": {"addr": addr, "ver": ver, "left": False, "state": "ready",
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
    ap.add_argument("--members", type=int, default=0,
                    help="leaves with an inbox of their own, which this "
                         "script binds and reads: then each rate runs "
                         "twice, unchanged heartbeats and new versions, "
                         "which the relay sends to them in batches")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.leaves < 1 or a.burst < 1 or min(a.rates) < 1 or a.seconds <= 0:
        ap.error("--leaves, --burst and --rates must be positive, "
                 "--seconds too")
    if a.leaves > 5 * min(a.rates):
        ap.error(f"{a.leaves} leaves at {min(a.rates)} messages a second: "
                 f"each would be heard every {a.leaves / min(a.rates):g} s, "
                 f"and lost after 10 s (at most 5 times the lowest rate)")
    if a.members > a.leaves:
        ap.error("--members can't exceed --leaves")
    harness.raise_nofile()

    c = harness.Cluster(a.choreo)
    port = harness.free_port()
    inbox = f"tcp://127.0.0.1:{port}"
    # Every played leaf without an inbox (--members) gives the same
    # address: one connection of the relay's, to a port where nobody
    # listens.
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
        ver = [1] * a.leaves
        addrs = [sink] * a.leaves
        inboxes = Inboxes(nn, a.members)
        for i, addr in enumerate(inboxes.addrs):
            addrs[i] = addr
        k = 0

        def send_for(rate, seconds, changes=False):
            nonlocal k
            gap = 1.0 / rate
            t0 = time.monotonic()
            sent = 0
            n = int(rate * seconds)
            while sent < n:
                i = k % a.leaves
                seq[i] += 1
                ver[i] += changes
                m = heartbeat(names[i], inc, seq[i], int(time.time() * 1000),
                              addrs[i], ver[i])
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
        def measure(rate, changes):
            rx0 = harness.metric(sock, "choreo_messages_received_total")
            b0 = harness.metric(sock, "choreo_relay_batches_sent_total")
            d0 = inboxes.received
            cpu0 = harness.cpu_seconds(pid)
            t0 = time.monotonic()
            sent, sending = send_for(rate, a.seconds, changes)
            # until what is still queued is taken in (or 5 s: PUB may
            # have dropped some), asking every 50 ms
            deadline = time.monotonic() + 5
            while True:
                rx1 = harness.metric(sock, "choreo_messages_received_total")
                if (rx1 or 0) - (rx0 or 0) >= sent or \
                        time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            b1 = harness.metric(sock, "choreo_relay_batches_sent_total")
            cpu1 = harness.cpu_seconds(pid)
            took = time.monotonic() - t0
            got = (rx1 or 0) - (rx0 or 0)
            cpu = cpu1 - cpu0
            return {"rate": rate, "changes": changes, "sent": sent,
                    "sent_per_s": round(sent / sending),
                    "received": int(got),
                    "batches": int((b1 or 0) - (b0 or 0)),
                    "delivered": inboxes.received - d0,
                    "cpu_s": round(cpu, 3),
                    "us_per_msg": round(cpu / got * 1e6, 1) if got else None,
                    "core_pct": round(100 * cpu / took, 1)}

        for rate in a.rates:
            row = measure(rate, False)
            if a.members > 0:
                # The same rate, every message a new version: the relay
                # passes each on, in batches to every member. What that
                # costs it more, over the copies its members took in.
                ch = measure(rate, True)
                copies = ch["delivered"] - row["delivered"]
                row["changes_cpu_s"] = ch["cpu_s"]
                row["batches"] = ch["batches"]
                row["copies"] = copies
                row["us_per_copy"] = round(
                    (ch["cpu_s"] - row["cpu_s"]) / copies * 1e6, 1) \
                    if copies > 0 else None
            rows.append(row)
    finally:
        for s in locals().get("socks", []):
            nn.nn_close(s)
        if "inboxes" in locals():
            inboxes.close()
        c.stop()
    if a.json:
        print(json.dumps({"machine": harness.machine(), "leaves": a.leaves,
                          "rows": rows}))
        return
    print(f"relay, {a.leaves} leaves played, {a.seconds:g} s a rate, "
          f"bursts of {a.burst}")
    print(f"{'rate/s':>8} {'sent/s':>8} {'received':>9} {'µs/msg':>7} "
          f"{'core %':>7}" + (f" {'batches':>8} {'copies':>8} {'µs/copy':>8}"
                              if a.members else ""))
    for r in rows:
        print(f"{r['rate']:>8} {r['sent_per_s']:>8} {r['received']:>9} "
              f"{r['us_per_msg']!s:>7} {r['core_pct']:>7}"
              + (f" {r['batches']:>8} {r['copies']:>8} "
                 f"{r['us_per_copy']!s:>8}" if a.members else ""))


if __name__ == "__main__":
    main()
