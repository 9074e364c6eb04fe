#!/usr/bin/env python3
"""Convergence: N agents started against one seed, until every agent sees
N members with their correct states; for choreo or for Serf.

The seed runs first. Then N-1 agents, each with its own state (choreo:
node.state: s<i>; Serf: tag state=s<i>), are started together; the clock
starts when the first of them is launched and stops when every agent's
view shows all N members (Serf: alive), each in its own state. Agents are
polled in turns over their control socket (choreo `status`) or RPC
connection (Serf `members`); an agent seen converged is not polled again,
so the poll rate rises as the cluster converges. Repeated R times; prints
the median and each run, in milliseconds and in heartbeats, and how long
launching the processes took (it is part of the figure).
"""
import datetime
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Cluster, arguments, configure_agents, parse,  # noqa
                     request, wait_until)
import serf_cluster  # noqa: E402


def choreo_view(c, n):
    st = c.status(n)
    if st is None:
        return None
    return {p["name"]: p["state"] for p in [st["node"]] + st["peers"]}


def serf_view(c, n):
    m = c.members(n)
    if m is None:
        return None
    return {k: t.get("state") for k, t in serf_cluster.alive_view(m).items()}


class NotConverged(Exception):
    def __init__(self, missing):
        super().__init__(f"{len(missing)} agents not converged, e.g. "
                         f"{missing[:5]}")
        self.missing = missing


def poll(names, view, want, t0, timeout, threads=16):
    """Poll until every agent's view is `want`; returns the time each
    agent was first seen converged, in ms after t0. Up to `threads` agents
    are asked at once, so that one slow answer doesn't hold up the rest."""
    done = {}
    deadline = time.monotonic() + timeout

    def check(n):
        if view(n) == want:
            return n, (time.monotonic() - t0) * 1000
        return n, None

    with ThreadPoolExecutor(max_workers=threads) as pool:
        while len(done) < len(names):
            if time.monotonic() > deadline:
                raise NotConverged([n for n in names if n not in done])
            todo = [n for n in names if n not in done]
            for n, at in pool.map(check, todo):
                if at is not None:
                    done[n] = at
            time.sleep(0.005)
    return done


def one_run_choreo(args):
    c = Cluster(args.choreo, args.keep, args.relay_nice,
                args.leaf_nice)
    try:
        names = configure_agents(c, args.agents, args.relays,
                                 args.heartbeat)
        for i, n in enumerate(names):
            with open(f"{c.d}/{n}.yaml") as f:
                text = f.read()
            with open(f"{c.d}/{n}.yaml", "w") as f:
                f.write(text.replace("  groups: [web]",
                                     f"  groups: [web]\n  state: s{i}"))
        c.start("n0")
        wait_until(lambda: c.status("n0") is not None, 10, "the seed")
        t0, wall0 = time.monotonic(), time.time()
        for n in names[1:]:
            c.start(n)
        launch = (time.monotonic() - t0) * 1000
        want = {n: f"s{i}" for i, n in enumerate(names)}
        done = poll(names, lambda n: choreo_view(c, n), want, t0,
                    args.timeout)
        if args.metrics:
            print(json.dumps(message_totals(c, names)), file=sys.stderr)
        return max(done.values()), launch, c.d, last_join_ms(c, names, wall0)
    finally:
        c.stop()


def message_totals(c, names):
    """Messages and bytes sent and received, summed over all agents, by
    metric line (choreo_messages_*, choreo_bytes_*)."""
    tot = {}
    for n in names:
        r = request(c.sock(n), {"cmd": "metrics"}) or {}
        for line in r.get("text", "").splitlines():
            if line.startswith(("choreo_messages", "choreo_bytes")):
                k, v = line.rsplit(" ", 1)
                tot[k] = tot.get(k, 0) + float(v)
    return tot


def last_join_ms(c, names, wall0):
    """When the last agent learnt the last member's state, from the
    agents' logs ("peer X joined: STATE", millisecond timestamps): the
    convergence time without the poller's resolution."""
    last = None
    for n in names:
        for line in c.log(n).splitlines():
            if " joined: " in line:
                t = datetime.datetime.strptime(
                    line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                        tzinfo=datetime.timezone.utc).timestamp()
                last = t if last is None else max(last, t)
    return None if last is None else (last - wall0) * 1000


def one_run_serf(args):
    c = serf_cluster.SerfCluster(args.serf, args.profile, args.keep)
    try:
        names = [f"n{i}" for i in range(args.agents)]
        c.add("n0", {"state": "s0"})
        c.wait_up("n0")
        t0 = time.monotonic()
        for i, n in enumerate(names[1:], 1):
            c.add(n, {"state": f"s{i}"}, join="n0")
        launch = (time.monotonic() - t0) * 1000
        want = {n: f"s{i}" for i, n in enumerate(names)}
        done = poll(names, lambda n: serf_view(c, n), want, t0,
                    args.timeout)
        return max(done.values()), launch, c.d, None
    finally:
        c.stop()


def main():
    ap = arguments(__doc__, agents=50)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=300,
                    help="seconds a run may take before it counts as not "
                         "converged")
    ap.add_argument("--metrics", action="store_true",
                    help="print the agents' summed message counters "
                         "(stderr) once converged")
    args = parse(ap)
    hb_ms = float(args.heartbeat[:-2]) if args.heartbeat.endswith("ms") \
        else float(args.heartbeat[:-1]) * 1000
    one = one_run_choreo if args.tool == "choreo" else one_run_serf
    runs, launches, dirs, logs, failed = [], [], [], [], []
    for _ in range(args.runs):
        try:
            ms, launch, d, log_ms = one(args)
        except NotConverged as e:
            # A figure too: how many were still missing at the deadline.
            failed.append(len(e.missing))
            print(f"run not converged after {args.timeout:.0f} s: {e}",
                  file=sys.stderr)
            time.sleep(5)
            continue
        runs.append(ms)
        launches.append(launch)
        dirs.append(d)
        logs.append(log_ms)
        # Let the sockets of the last run (TIME_WAIT) and its processes go.
        time.sleep(0.5)
    med = statistics.median(runs) if runs else None
    if args.json:
        print(json.dumps({"tool": args.tool, "agents": args.agents,
                          "relays": args.relays,
                          "runs_ms": runs, "median_ms": med,
                          "not_converged": failed,
                          "timeout_s": args.timeout,
                          "max_ms": max(runs) if runs else None,
                          "launch_ms": launches,
                          "log_ms": logs,
                          "heartbeat_ms": hb_ms,
                          "dirs": dirs if args.keep else []}))
    else:
        extra = f"heartbeat {args.heartbeat}" + (
            f", {args.relays} relays" if args.relays else ", full mesh") \
            if args.tool == "choreo" else f"profile {args.profile}"
        if not runs:
            print(f"{args.tool} convergence, {args.agents} agents against "
                  f"one seed, {extra}: no run converged within "
                  f"{args.timeout:.0f} s (agents missing: "
                  + ", ".join(map(str, failed)) + ")")
            return 1
        print(f"{args.tool} convergence, {args.agents} agents against one "
              f"seed, {extra}: median {med:.0f} ms"
              + (f" ({med / hb_ms:.2f} heartbeats)"
                 if args.tool == "choreo" else "")
              + f" over {args.runs} runs: "
              + ", ".join(f"{r:.0f}" for r in runs)
              + f"; launching took {statistics.median(launches):.0f} ms"
              + (f"; {len(failed)} runs not converged within "
                 f"{args.timeout:.0f} s" if failed else ""))
        if args.keep:
            print("directories: " + " ".join(dirs))


if __name__ == "__main__":
    sys.exit(main())
