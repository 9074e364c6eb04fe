#!/usr/bin/env python3
"""Idle cost per agent: N agents (choreo, or Serf) joined through one seed
and left alone; after they have converged and settled, RSS (VmRSS of
/proc/PID/status), PSS (/proc/PID/smaps_rollup: private pages plus a
share of the shared ones) and CPU (utime + stime of /proc/PID/stat) are read for
every agent, then the CPU again after --seconds. Prints per-agent median
and maximum RSS in MiB and CPU in percent of one core (CPU time over wall
time), and the sum over all agents.

choreo: heartbeat 1 s (the default; --heartbeat), no behaviours. Serf: its default
(lan) profile unless --profile says otherwise. The CPU figure has the
resolution of the kernel's clock tick (1/CLK_TCK s, usually 10 ms, over
the whole interval: 0.017 % of one core over 60 s).
"""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from converge import choreo_view, poll, serf_view  # noqa: E402
from harness import (Cluster, arguments, cpu_seconds, free_port,  # noqa
                     loopback, parse, pss_kib, relay_roles, rss_kib,
                     wait_until)
import serf_cluster  # noqa: E402


def sample(pids, seconds):
    cpu0 = {n: cpu_seconds(p) for n, p in pids.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    cpu1 = {n: cpu_seconds(p) for n, p in pids.items()}
    wall = time.monotonic() - t0
    rss = {n: rss_kib(p) for n, p in pids.items()}
    pss = {n: pss_kib(p) for n, p in pids.items()}
    cpu = {n: 100.0 * (cpu1[n] - cpu0[n]) / wall for n in pids}
    return rss, pss, cpu


def start_choreo(args):
    c = Cluster(args.choreo, relay_nice=args.relay_nice,
                leaf_nice=args.leaf_nice)
    names = [f"n{i}" for i in range(args.agents)]
    ports = {n: free_port() for n in names}
    index = {n: i for i, n in enumerate(names)}
    roles = relay_roles(names, args.relays,
                        lambda n: f"tcp://{loopback(index[n])}:{ports[n]}")
    for i, n in enumerate(names):
        c.config(n, ports[n], "web", heartbeat=args.heartbeat,
                 host=loopback(i), **roles[n])
    c.start("n0")
    wait_until(lambda: c.status("n0") is not None, 10, "the seed")
    for n in names[1:]:
        c.start(n)
    want = {n: "ready" for n in names}
    poll(names, lambda n: choreo_view(c, n), want, time.monotonic(), 300)
    return c, {n: c.procs[n].pid for n in names}


def start_serf(args):
    c = serf_cluster.SerfCluster(args.serf, args.profile)
    names = [f"n{i}" for i in range(args.agents)]
    c.add("n0", {"state": "ready"})
    c.wait_up("n0")
    for n in names[1:]:
        c.add(n, {"state": "ready"}, join="n0")
    want = {n: "ready" for n in names}
    poll(names, lambda n: serf_view(c, n), want, time.monotonic(), 300)
    # The RPC connections used to check convergence are closed, so that
    # nothing but the cluster itself runs during the measurement.
    for r in c.rpcs.values():
        r.close()
    c.rpcs = {}
    return c, {n: c.procs[n].pid for n in names}


def main():
    ap = arguments(__doc__, agents=50, keep=False)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--settle", type=float, default=5,
                    help="seconds to wait after convergence")
    args = parse(ap)
    start = start_choreo if args.tool == "choreo" else start_serf
    c, pids = start(args)
    try:
        time.sleep(args.settle)
        rss, pss, cpu = sample(pids, args.seconds)
    finally:
        c.stop()
    r = [v / 1024 for v in rss.values() if v is not None]
    ps = [v / 1024 for v in pss.values() if v is not None]
    u = list(cpu.values())
    relays = [f"n{i}" for i in range(args.relays)]
    result = {"tool": args.tool, "agents": args.agents,
              "relays": args.relays, "seconds": args.seconds,
              "relay_cpu_pct": [cpu[n] for n in relays],
              "relay_rss_mib": [rss[n] / 1024 for n in relays
                                if rss[n] is not None],
              "rss_mib_median": statistics.median(r), "rss_mib_max": max(r),
              "rss_mib_total": sum(r),
              "pss_mib_median": statistics.median(ps) if ps else None,
              "cpu_pct_median": statistics.median(u), "cpu_pct_max": max(u),
              "cpu_pct_total": sum(u)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.tool} idle, {args.agents} agents, {args.seconds:.0f} s: "
              f"RSS per agent median {result['rss_mib_median']:.2f} MiB "
              f"(max {result['rss_mib_max']:.2f}, total "
              f"{result['rss_mib_total']:.0f}; PSS median "
              f"{result['pss_mib_median'] or 0:.2f} MiB); CPU per agent median "
              f"{result['cpu_pct_median']:.3f} % (max "
              f"{result['cpu_pct_max']:.3f} %, total "
              f"{result['cpu_pct_total']:.2f} % of one core)"
              + (f"; the {args.relays} relays: CPU "
                 + ", ".join(f"{v:.3f} %" for v in result["relay_cpu_pct"])
                 if args.relays else ""))


if __name__ == "__main__":
    sys.exit(main())
