#!/usr/bin/env python3
"""Soak: N choreo agents under churn for a while, watching for growth.

Starts N agents joined through one seed (a few in group db, the rest in
group web with a behaviour on group db that runs /bin/true, so scripts run
all along). Then, for --seconds: every --set-every seconds a random agent
is set to a random state (through its control socket); every --kill-every
seconds one of the churn agents (the last --churn ones) is killed with
SIGKILL and restarted 0.5 to 3 s later (it comes back with its persisted
state and a new incarnation). Every --sample-every seconds it records the
RSS (VmRSS) and the number of open descriptors (/proc/PID/fd) of every
agent.

At the end it stops the churn, waits until every agent sees every other
with the state it was last given, and reports, for the agents that were
never restarted, the growth of RSS and descriptors between the first
sample after --warmup seconds and the last one (none is expected: a
table, a queue or a descriptor that grows with time is a leak).

With --relays R the first R agents are relays (never killed) and the
others their leaves (the churn agents are leaves).

Smoke run: the defaults (60 s). One hour:
    bench/soak.py --choreo BUILD/choreo --seconds 3600
"""
import json
import os
import random
import signal
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Cluster, arguments, fd_count, free_port,  # noqa
                     loopback, parse, relay_roles, request, rss_kib,
                     wait_until)

STATES = ["ready", "maintenance", "draining", "degraded"]


def behaviour():
    return """behaviours:
  - name: follow-db
    peers: {group: db}
    when: {any: maintenance}
    run: [/bin/true]
    revert: [/bin/true]
"""


def main():
    ap = arguments(__doc__, agents=50, serf=False)
    ap.add_argument("--db", type=int, default=3, help="agents in group db")
    ap.add_argument("--churn", type=int, default=10,
                    help="agents that may be killed and restarted")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--set-every", type=float, default=0.2)
    ap.add_argument("--kill-every", type=float, default=3)
    ap.add_argument("--sample-every", type=float, default=5)
    ap.add_argument("--seed", type=int, default=None)
    args = parse(ap)
    rng = random.Random(args.seed)
    c = Cluster(args.choreo, args.keep)
    names = [f"n{i}" for i in range(args.agents)]
    churn = names[len(names) - args.churn:] if args.churn > 0 else []
    stable = [n for n in names if n not in churn]
    ports = {n: free_port() for n in names}
    index = {n: i for i, n in enumerate(names)}
    roles = relay_roles(names, args.relays,
                        lambda n: f"tcp://{loopback(index[n])}:{ports[n]}")
    expected = {n: "ready" for n in names}
    sets = kills = 0
    samples = []  # (t, {name: (rss, fds)})
    restarted = set()
    down = {}  # name -> time to restart
    last_restart = 0.0
    try:
        for i, n in enumerate(names):
            db = i < args.db
            c.config(n, ports[n], "db" if db else "web",
                     heartbeat=args.heartbeat,
                     extra="" if db else behaviour(), host=loopback(i),
                     **roles[n])
        c.start("n0")
        wait_until(lambda: c.status("n0") is not None, 10, "the seed")
        for n in names[1:]:
            c.start(n)
        for n in names:
            wait_until(lambda n=n: len((c.status(n) or {"peers": []})
                                       ["peers"]) == len(names) - 1,
                       120, f"{n} to see everyone")
        t0 = time.monotonic()
        next_set = next_kill = next_sample = t0
        while True:
            now = time.monotonic()
            if now - t0 >= args.seconds:
                break
            if now >= next_sample:
                snap = {}
                for n in names:
                    p = c.procs[n]
                    if n not in down and p.poll() is None:
                        snap[n] = (rss_kib(p.pid), fd_count(p.pid))
                # "settled": every agent up, the last restart 3 s ago or more
                samples.append((now - t0, snap,
                                not down and now - last_restart >= 3))
                next_sample += args.sample_every
            if now >= next_set:
                n = rng.choice([m for m in names if m not in down])
                s = rng.choice(STATES)
                r = request(c.sock(n), {"cmd": "set", "state": s})
                if r and r.get("ok"):
                    expected[n] = s
                    sets += 1
                next_set += args.set_every
            if churn and now >= next_kill:
                live = [m for m in churn if m not in down]
                if live:
                    n = rng.choice(live)
                    c.procs[n].send_signal(signal.SIGKILL)
                    c.procs[n].wait()
                    down[n] = now + rng.uniform(0.5, 3)
                    kills += 1
                next_kill += args.kill_every
            for n, at in list(down.items()):
                if now >= at:
                    c.start(n)
                    restarted.add(n)
                    last_restart = now
                    del down[n]
            time.sleep(0.01)
        for n in list(down):
            c.start(n)
            restarted.add(n)
        down.clear()
        # The churn is over: everyone must agree on everyone's state.
        t_end = time.monotonic()

        wrong = []

        def agreed():
            wrong.clear()
            for n in names:
                st = c.status(n)
                if st is None:
                    wrong.append(f"{n}: no answer")
                    return False
                seen = {p["name"]: p["state"]
                        for p in [st["node"]] + st["peers"]}
                if seen != expected:
                    diff = sorted(f"{k}={seen.get(k)} (want {v})"
                                  for k, v in expected.items()
                                  if seen.get(k) != v)
                    wrong.append(f"{n} sees " + ", ".join(diff[:5]))
                    return False
            return True
        try:
            wait_until(agreed, 60, "agreement after the churn", 0.1)
        except SystemExit:
            print("not agreed 60 s after the churn: " + "; ".join(wrong),
                  file=sys.stderr)
            raise
        heal_ms = (time.monotonic() - t_end) * 1000
        final = {n: (rss_kib(c.procs[n].pid), fd_count(c.procs[n].pid))
                 for n in names}
    finally:
        c.stop()

    # The first sample after the warm-up taken while every agent was up
    # and connected (one that is down holds no connections to the others).
    base = next((s for t, s, all_up in samples
                 if t >= args.warmup and all_up),
                next(s for t, s, _ in samples if t >= args.warmup)
                if samples[-1][0] >= args.warmup else samples[0][1])
    last = final
    rss_growth = [last[n][0] - base[n][0] for n in stable
                  if n in base and n not in restarted]
    fd_growth = [last[n][1] - base[n][1] for n in stable
                 if n in base and n not in restarted]
    total_rss = [sum(s[n][0] for n in stable if n in s) / 1024
                 for _, s, _ in samples]
    result = {
        "agents": args.agents, "relays": args.relays,
        "seconds": args.seconds, "sets": sets,
        "kills": kills, "heal_ms": heal_ms,
        "rss_kib_start_median": statistics.median(
            base[n][0] for n in stable if n in base),
        "rss_kib_end_median": statistics.median(
            last[n][0] for n in stable),
        "rss_growth_kib_median": statistics.median(rss_growth),
        "rss_growth_kib_max": max(rss_growth),
        "fd_start_median": statistics.median(
            base[n][1] for n in stable if n in base),
        "fd_growth_max": max(fd_growth), "fd_growth_min": min(fd_growth),
        "stable_rss_mib_series": [round(x, 2) for x in total_rss],
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"soak: {args.agents} agents, {args.seconds:.0f} s, {sets} state "
          f"changes, {kills} kills and restarts; agreement {heal_ms:.0f} ms "
          f"after the churn stopped")
    print(f"  stable agents ({len(rss_growth)}): RSS median "
          f"{result['rss_kib_start_median'] / 1024:.2f} -> "
          f"{result['rss_kib_end_median'] / 1024:.2f} MiB, growth median "
          f"{result['rss_growth_kib_median']:+d} KiB, max "
          f"{result['rss_growth_kib_max']:+d} KiB; descriptors median "
          f"{result['fd_start_median']:.0f}, growth "
          f"{result['fd_growth_min']:+d}..{result['fd_growth_max']:+d}")
    print("  RSS of the stable agents, total MiB per sample: "
          + " ".join(f"{x:.1f}" for x in total_rss))
    return 0


if __name__ == "__main__":
    sys.exit(main())
