#!/usr/bin/env python3
"""Steady-state cost per agent: N choreo agents (R relays, the rest their
leaves, or a full mesh) started against one seed; once every agent sees
all N members in their states (or --timeout has passed: the agents that
did not converge are named, and the rest measured all the same) and
--settle seconds have passed, every
agent's counters (`choreo metrics` over its control socket) and CPU
(utime + stime of /proc/PID/stat) are read, then read again --seconds
later. Prints, per role (relay, leaf; member in a full mesh), the median and maximum across the
agents of:

* messages received a second (choreo_messages_received_total: every
  frame, a relay batch's frames each counted) and relay batches received
  a second (choreo_relay_batches_received_total; a batch is one
  delivery, one wake-up, however many frames it holds);
* for relays, leaves' heartbeats passed on and kept a second
  (choreo_relay_forwarded_total, choreo_relay_repeats_kept_total) and
  messages sent a second;
* CPU in percent of one core over the interval;

and the cluster's totals of choreo_relay_resyncs_asked_total and
choreo_relay_catch_up_windows_total at both reads (at steady state they
stop growing), with the agents that asked a resync in between.

Each agent's rates are its counters' difference over the time between
its own two reads. The reads themselves (one metrics request per agent
at each end) cost every agent the same small amount of CPU.

    bench/steady.py --choreo BUILD/choreo --agents 500 --relays 2 \\
        --seconds 10 --settle 10 --json

The limits 500 agents need (descriptors: a relay holds two per member)
are raised by the harness to the hard limit; the script says so if that
is below what a relay needs.
"""
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from converge import NotConverged, choreo_view, poll  # noqa: E402
from harness import (Cluster, arguments, configure_agents,  # noqa
                     cpu_seconds, parse, raise_nofile, request, wait_until)

COUNTERS = ("choreo_messages_received_total",
            "choreo_relay_batches_received_total",
            "choreo_messages_sent_total",
            "choreo_relay_forwarded_total",
            "choreo_relay_repeats_kept_total",
            "choreo_relay_resyncs_asked_total",
            "choreo_relay_catch_up_windows_total",
            "choreo_relay_duplicates_total",
            "choreo_messages_send_failed_total")


def counters(sock):
    """The unlabelled counters of COUNTERS of one agent, read at a
    monotonic time; None when it does not answer."""
    r = request(sock, {"cmd": "metrics"})
    at = time.monotonic()
    if r is None or "text" not in r:
        return None
    out = {"at": at}
    for line in r["text"].splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in COUNTERS:
            out[parts[0]] = float(parts[1])
    return out


def read_all(c, names, pids, threads=16):
    """Every agent's counters and CPU seconds, read at about the same
    moment (the CPU just after the agent answered)."""
    def one(n):
        m = counters(c.sock(n))
        if m is not None:
            m["cpu"] = cpu_seconds(pids[n])
        return n, m
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return dict(pool.map(one, names))


def rates(a, b):
    """Per-second rates between two reads of one agent."""
    dt = b["at"] - a["at"]
    r = {k: (b.get(k, 0) - a.get(k, 0)) / dt for k in COUNTERS}
    r["cpu_pct"] = 100.0 * (b["cpu"] - a["cpu"]) / dt
    return r


def stat(values):
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"median": statistics.median(v), "max": max(v), "n": len(v)}


def main():
    ap = arguments(__doc__, agents=200, serf=False)
    ap.add_argument("--seconds", type=float, default=10,
                    help="the interval between the two reads")
    ap.add_argument("--settle", type=float, default=10,
                    help="seconds to wait after convergence")
    ap.add_argument("--timeout", type=float, default=300,
                    help="seconds convergence may take")
    args = parse(ap)
    if args.relays:
        need = 2 * args.agents + 64
        have = raise_nofile()
        if have < need:
            print(f"warning: descriptor limit {have} is below the about "
                  f"{need} a relay of {args.agents} members needs",
                  file=sys.stderr)
    c = Cluster(args.choreo, args.keep, args.relay_nice,
                args.leaf_nice)
    try:
        names = configure_agents(c, args.agents, args.relays,
                                 args.heartbeat)
        c.start("n0")
        wait_until(lambda: c.status("n0") is not None, 10, "the seed")
        t0 = time.monotonic()
        for n in names[1:]:
            c.start(n)
        want = {n: "ready" for n in names}
        try:
            done = poll(names, lambda n: choreo_view(c, n), want, t0,
                        args.timeout)
            converged_ms, missing = max(done.values()), []
        except NotConverged as e:
            # Measured all the same: what the agents that did converge
            # cost, with the names of those that did not.
            converged_ms, missing = None, e.missing
            print(f"not converged after {args.timeout:.0f} s: {e}; "
                  "measuring anyway", file=sys.stderr)
        time.sleep(args.settle)
        pids = {n: c.procs[n].pid for n in names}
        first = read_all(c, names, pids)
        time.sleep(args.seconds)
        second = read_all(c, names, pids)
    finally:
        c.stop()
    relays = set(names[:args.relays])
    per = {n: rates(first[n], second[n]) for n in names
           if first.get(n) and second.get(n)}
    result = {"agents": args.agents, "relays": args.relays,
              "heartbeat": args.heartbeat, "seconds": args.seconds,
              "settle": args.settle, "converged_ms": converged_ms,
              "not_converged": missing,
              "answered": len(per), "dir": c.d if args.keep else None}
    # Without relays every agent is a mesh member.
    others = "leaf" if args.relays else "member"
    for role, members in (("relay", [n for n in per if n in relays]),
                          (others, [n for n in per if n not in relays])):
        if not members:
            continue
        result[role] = {
            "received_per_s": stat(
                per[n]["choreo_messages_received_total"] for n in members),
            "batches_per_s": stat(
                per[n]["choreo_relay_batches_received_total"]
                for n in members),
            "sent_per_s": stat(
                per[n]["choreo_messages_sent_total"] for n in members),
            "forwarded_per_s": stat(
                per[n]["choreo_relay_forwarded_total"] for n in members),
            "kept_per_s": stat(
                per[n]["choreo_relay_repeats_kept_total"] for n in members),
            "duplicates_per_s": stat(
                per[n]["choreo_relay_duplicates_total"] for n in members),
            "cpu_pct": stat(per[n]["cpu_pct"] for n in members),
        }
    for k in ("choreo_relay_resyncs_asked_total",
              "choreo_relay_catch_up_windows_total",
              "choreo_messages_send_failed_total"):
        short = k[len("choreo_"):-len("_total")]
        result[short] = {
            "first": sum(first[n].get(k, 0) for n in per),
            "second": sum(second[n].get(k, 0) for n in per),
            "grew_on": sorted(n for n in per
                              if second[n].get(k, 0) > first[n].get(k, 0)),
        }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"steady state, {args.agents} agents, "
          + (f"{args.relays} relays" if args.relays else "full mesh")
          + f", heartbeat {args.heartbeat}, "
          + (f"converged in {converged_ms:.0f} ms" if not missing else
             f"{len(missing)} agents not converged after "
             f"{args.timeout:.0f} s ({', '.join(missing[:10])})")
          + f", read {args.settle:.0f} s later over {args.seconds:.0f} s:")
    for role in ("relay", "leaf", "member"):
        if role not in result:
            continue
        r = result[role]
        line = (f"  {role} (median/max of {r['cpu_pct']['n']}): received "
                f"{r['received_per_s']['median']:.1f}/"
                f"{r['received_per_s']['max']:.1f} msg/s, batches "
                f"{r['batches_per_s']['median']:.1f}/s, sent "
                f"{r['sent_per_s']['median']:.1f}/s, CPU "
                f"{r['cpu_pct']['median']:.3f}/{r['cpu_pct']['max']:.3f} %")
        if role == "relay":
            line += (f", forwarded {r['forwarded_per_s']['median']:.1f}/s"
                     f", kept {r['kept_per_s']['median']:.1f}/s")
        print(line)
    for k in ("relay_resyncs_asked", "relay_catch_up_windows",
              "messages_send_failed"):
        v = result[k]
        print(f"  {k}: {v['first']:.0f} then {v['second']:.0f} (grew on "
              f"{len(v['grew_on'])} agents)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
