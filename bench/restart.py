#!/usr/bin/python3
"""Restart to first action: how long a restarted agent takes, from its
process start to the first action it owes, in a cluster of N agents.

db1 and N-1 webservers on loopback; web1 has a level behaviour on the db
group ({any: maintenance}) whose run and revert are bench/stamp. Each
round: db1 goes into maintenance and web1 runs; web1 is killed (SIGKILL);
db1 goes back to ready; web1 is started again and must revert, once it has
waited for the members it knew (members.json) and reconciled what it had
applied (applied.json): the time from just before its start to the
revert's stamp is the figure. Prints the median and p90 over --rounds.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def stamps(path):
    try:
        with open(path) as f:
            return [ln.split() for ln in f if ln.strip()]
    except OSError:
        return []


def main():
    ap = harness.arguments(__doc__, agents=3, serf=False)
    ap.add_argument("--stamp", default="build/bench/stamp")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--lost-after", default="5s")
    args = harness.parse(ap)
    stamp = os.path.abspath(args.stamp)
    c = harness.Cluster(args.choreo, keep=args.keep)
    names = ["db1"] + [f"web{i}" for i in range(1, args.agents)]
    ports = {n: harness.free_port() for n in names}
    host = {n: harness.loopback(i) for i, n in enumerate(names)}
    seed = f"tcp://{host['db1']}:{ports['db1']}"
    sf = f"{c.d}/web1.stamps"
    try:
        for n in names:
            extra = ""
            if n == "web1":
                extra = ("behaviours:\n  - name: holding\n    peers: {group: db}\n"
                         "    when: {any: maintenance}\n"
                         f"    run: [{stamp}, {sf}]\n"
                         f"    revert: [{stamp}, {sf}]\n")
            c.config(n, ports[n], "db" if n == "db1" else "web",
                     [] if n == "db1" else [seed], heartbeat=args.heartbeat,
                     lost_after=args.lost_after, extra=extra, host=host[n])
            c.start(n)
        harness.wait_until(
            lambda: all((s := c.status(n)) is not None and
                        len(s["peers"]) == len(names) - 1 for n in names),
            120, "the cluster to form", step=0.05)
        lat = []
        for _ in range(args.rounds):
            before = len(stamps(sf))
            harness.request(c.sock("db1"), {"cmd": "set", "state": "maintenance"})
            harness.wait_until(lambda: len(stamps(sf)) > before, 10,
                               "web1's run", step=0.002)
            os.kill(c.procs["web1"].pid, signal.SIGKILL)
            c.procs["web1"].wait()
            harness.request(c.sock("db1"), {"cmd": "set", "state": "ready"})
            # db1's ready reaches the other webs before web1 is back, so
            # that the figure is web1's own.
            harness.wait_until(
                lambda: all(any(p["name"] == "db1" and p["state"] == "ready"
                                for p in (c.status(n) or {"peers": []})["peers"])
                            for n in names[2:]), 10, "db1 ready everywhere",
                step=0.005)
            before = len(stamps(sf))
            t0 = time.time_ns()
            c.start("web1")
            harness.wait_until(lambda: len(stamps(sf)) > before, 60,
                               "web1's revert after its restart", step=0.002)
            ev, ns = stamps(sf)[before]
            if ev != "revert":
                raise SystemExit(f"web1's first action after the restart was "
                                 f"{ev}, not revert")
            lat.append((int(ns) - t0) / 1e6)
        s = harness.summary(lat)
        if args.json:
            import json
            print(json.dumps({"agents": args.agents, "restart_to_action_ms": s}))
        else:
            print(f"{args.agents} agents, heartbeat {args.heartbeat}: restart to "
                  f"first action p50 {s['p50']:.1f} ms, p90 {s['p90']:.1f} ms "
                  f"({s['n']} rounds)")
    finally:
        c.stop()


if __name__ == "__main__":
    main()
