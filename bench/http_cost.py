#!/usr/bin/env python3
"""The HTTP endpoint's cost (docs/BENCHMARKS.md "HTTP endpoint").

1. Idle: a cluster of --idle-agents agents (default 3) where n1 serves
   http and n2 does not; after convergence, RSS (VmRSS) and CPU (utime +
   stime over --seconds) of both.
2. /metrics: a cluster of --agents agents (default 200) where n0 serves
   http (with --relays 2, n0 is a relay: a full mesh of 200 does not
   converge on a small machine, docs/BENCHMARKS.md); once n0 sees every peer, GET /metrics --requests times (one
   connection each, as Prometheus would after a close) and the time to the
   whole body: p50, p90, max, and the body's size.
"""
import json
import os
import signal
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from converge import choreo_view, poll  # noqa: E402
from harness import (Cluster, arguments, cpu_seconds, free_port,  # noqa
                     loopback, parse, percentile, relay_roles, rss_kib,
                     wait_until)


def cluster(args, n, http_on, relays=0):
    """n agents joined through n0; http_on: names that serve http."""
    c = Cluster(args.choreo)
    names = [f"n{i}" for i in range(n)]
    ports = {x: free_port() for x in names}
    index = {x: i for i, x in enumerate(names)}
    roles = relay_roles(names, relays,
                        lambda x: f"tcp://{loopback(index[x])}:{ports[x]}")
    hports = {}
    for i, x in enumerate(names):
        extra = ""
        if x in http_on:
            hports[x] = free_port()
            extra = f"http:\n  listen: 127.0.0.1:{hports[x]}\n"
        c.config(x, ports[x], "web", heartbeat=args.heartbeat,
                 host=loopback(i), extra=extra, **roles[x])
    c.start("n0")
    wait_until(lambda: c.status("n0") is not None, 10, "the seed")
    for x in names[1:]:
        c.start(x)
    want = {x: "ready" for x in names}
    poll(names, lambda x: choreo_view(c, x), want, time.monotonic(), 600)
    return c, hports


def idle(args):
    c, _ = cluster(args, args.idle_agents, {"n1"})
    try:
        time.sleep(5)  # settle
        pids = {x: c.procs[x].pid for x in ("n1", "n2")}
        cpu0 = {x: cpu_seconds(p) for x, p in pids.items()}
        t0 = time.monotonic()
        time.sleep(args.seconds)
        wall = time.monotonic() - t0
        return {("http_on" if x == "n1" else "http_off"): {
            "rss_mib": round(rss_kib(p) / 1024, 2),
            "cpu_percent": round(100 * (cpu_seconds(p) - cpu0[x]) / wall, 3)}
            for x, p in pids.items()}
    finally:
        c.stop()


def metrics(args):
    c, hports = cluster(args, args.agents, {"n0"}, args.relays)
    try:
        url = f"http://127.0.0.1:{hports['n0']}/metrics"
        times, size = [], 0
        for _ in range(args.requests):
            t0 = time.monotonic()
            with urllib.request.urlopen(url, timeout=10) as r:
                size = len(r.read())
            times.append((time.monotonic() - t0) * 1000)
            time.sleep(0.05)
        return {"agents": args.agents, "requests": args.requests,
                "p50_ms": round(percentile(times, 50), 2),
                "p90_ms": round(percentile(times, 90), 2),
                "max_ms": round(max(times), 2), "bytes": size}
    finally:
        c.stop()


def main():
    ap = arguments(__doc__, 200, serf=False, keep=False)
    ap.add_argument("--idle-agents", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--requests", type=int, default=50)
    args = parse(ap)
    # A SIGTERM still stops the agents (the finally clauses run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    out = {"idle": idle(args), "metrics": metrics(args)}
    out["metrics"]["relays"] = args.relays
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
