#!/usr/bin/env python3
"""Convergence of choreo: N agents started against one seed, until every
agent sees N members with their correct states.

The seed runs first. Then N-1 agents, each with its own declared state
(node.state: s<i>), are started together; the clock starts when the first
of them is launched and stops when every agent's status shows all N
members, each in its own declared state. Repeated R times; prints the
median and each run, in milliseconds and in heartbeats.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Cluster, free_port, wait_until  # noqa: E402


def converged(c, names):
    want = {n: f"s{i}" for i, n in enumerate(names)}
    for n in names:
        st = c.status(n)
        if st is None:
            return False
        seen = {p["name"]: p["state"] for p in [st["node"]] + st["peers"]}
        if seen != want:
            return False
    return True


def one_run(args):
    c = Cluster(args.choreo)
    try:
        names = [f"n{i}" for i in range(args.agents)]
        ports = {n: free_port() for n in names}
        seed = f"tcp://127.0.0.1:{ports['n0']}"
        for i, n in enumerate(names):
            c.config(n, ports[n], "web", [] if i == 0 else [seed],
                     args.heartbeat, lost_after="30s")
            with open(f"{c.d}/{n}.yaml") as f:
                text = f.read()
            with open(f"{c.d}/{n}.yaml", "w") as f:
                f.write(text.replace("  groups: [web]",
                                     f"  groups: [web]\n  state: s{i}"))
        c.start("n0")
        wait_until(lambda: c.status("n0") is not None, 10, "the seed")
        t0 = time.monotonic()
        for n in names[1:]:
            c.start(n)
        wait_until(lambda: converged(c, names), 120, "convergence", 0.02)
        return (time.monotonic() - t0) * 1000
    finally:
        c.stop()


def main():
    ap = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--choreo", default="build/choreo")
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--heartbeat", default="1s")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    hb_ms = float(args.heartbeat[:-2]) if args.heartbeat.endswith("ms") \
        else float(args.heartbeat[:-1]) * 1000
    runs = [one_run(args) for _ in range(args.runs)]
    med = statistics.median(runs)
    if args.json:
        print(json.dumps({"agents": args.agents, "runs_ms": runs,
                          "median_ms": med, "heartbeat_ms": hb_ms}))
    else:
        print(f"choreo convergence, {args.agents} agents against one seed, "
              f"heartbeat {args.heartbeat}: median {med:.0f} ms "
              f"({med / hb_ms:.2f} heartbeats) over {args.runs} runs: "
              + ", ".join(f"{r:.0f}" for r in runs))


if __name__ == "__main__":
    sys.exit(main())
