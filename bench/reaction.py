#!/usr/bin/env python3
"""Reaction latency of choreo: time from `choreo set` on the database node
to the behaviour script starting on every webserver that depends on it.

Starts N agents on loopback (db1 plus N-1 webservers whose behaviour
watches group db), then flips db1 between maintenance and ready C times.
For each change it measures, from just before the `choreo set` command is
started, the moment each webserver's script began (the script's first
action writes a wall-clock timestamp). Prints the median and p90 of the
slowest webserver per change, and of every webserver.

Two kinds of script: `stamp` (a tiny C program, so the figure is choreo's
own cost plus one exec) and `sh` (`/bin/sh -c 'date +%s%N'`, the method
used for Serf's figures in docs/BENCHMARKS.md).
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Cluster, free_port, percentile, wait_until  # noqa: E402


def set_via_socket(path, state):
    """Send the set request on the control socket, as libchoreo does;
    returns the time just before sending."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        req = json.dumps({"cmd": "set", "state": state}).encode() + b"\n"
        t0 = time.time_ns()
        s.sendall(req)
        reply = s.makefile().readline()
        if not json.loads(reply).get("ok"):
            raise SystemExit(f"set refused: {reply}")
        return t0


def stamps(path):
    try:
        with open(path) as f:
            return [int(line.split()[1]) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def behaviour(handler, stamp_file):
    cmd = json.dumps(handler + [stamp_file])
    return f"""behaviours:
  - name: holding-page
    peers: {{group: db}}
    when: {{any: maintenance}}
    run: {cmd}
    revert: {cmd}
"""


def run(args):
    c = Cluster(args.choreo, args.keep)
    try:
        if args.handler == "stamp":
            handler = [args.stamp]
        else:
            # sh runs `date` first: its timestamp is the script's first act.
            handler = ["/bin/sh", "-c", 'date +"- %s%N" >> "$0"']
        names = ["db1"] + [f"web{i}" for i in range(1, args.agents)]
        ports = {n: free_port() for n in names}
        seed = f"tcp://127.0.0.1:{ports['db1']}"
        for n in names:
            extra = "" if n == "db1" else behaviour(handler,
                                                    f"{c.d}/{n}.stamps")
            c.config(n, ports[n], "db" if n == "db1" else "web",
                     [] if n == "db1" else [seed], args.heartbeat,
                     extra=extra)
            c.start(n)
        for n in names:
            wait_until(lambda n=n: len((c.status(n) or {"peers": []})
                                       ["peers"]) == args.agents - 1,
                       60, f"{n} to see everyone")
        # Measure only once every agent has finished its startup sync.
        for n in names:
            wait_until(lambda n=n: "synchronised" in c.log(n), 60,
                       f"{n} to sync")
        webs = names[1:]
        slowest, each = [], []
        for i in range(args.changes):
            state = "maintenance" if i % 2 == 0 else "ready"
            if args.via == "cli":
                t0 = time.time_ns()
                subprocess.run([c.choreo, "set", state, "--socket",
                                c.sock("db1")], check=True)
            else:
                t0 = set_via_socket(c.sock("db1"), state)
            wait_until(lambda: all(len(stamps(f"{c.d}/{w}.stamps")) > i
                                   for w in webs), 30, f"change {i}")
            lat = [(stamps(f"{c.d}/{w}.stamps")[i] - t0) / 1e6 for w in webs]
            slowest.append(max(lat))
            each.extend(lat)
        return slowest, each
    finally:
        c.stop()


def main():
    ap = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--choreo", default="build/choreo")
    ap.add_argument("--stamp", default="build/bench/stamp")
    ap.add_argument("--agents", type=int, default=3)
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--handler", choices=["stamp", "sh"], default="stamp")
    ap.add_argument("--heartbeat", default="1s")
    ap.add_argument("--via", choices=["cli", "socket"], default="cli",
                    help="cli: time from starting `choreo set` (the figure "
                    "comparable with Serf's); socket: from the request on "
                    "the control socket, without the CLI's own start-up")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    args.stamp = os.path.abspath(args.stamp)
    slowest, each = run(args)
    result = {
        "agents": args.agents, "changes": args.changes,
        "handler": args.handler, "via": args.via,
        "slowest_p50_ms": statistics.median(slowest),
        "slowest_p90_ms": percentile(slowest, 90),
        "each_p50_ms": statistics.median(each),
        "each_p90_ms": percentile(each, 90),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"choreo reaction, {args.agents} agents, {args.changes} "
              f"changes, {args.handler} script, via {args.via}: slowest "
              f"dependent p50 {result['slowest_p50_ms']:.2f} ms, p90 "
              f"{result['slowest_p90_ms']:.2f} ms; each dependent p50 "
              f"{result['each_p50_ms']:.2f} ms, p90 "
              f"{result['each_p90_ms']:.2f} ms")


if __name__ == "__main__":
    sys.exit(main())
