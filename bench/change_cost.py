#!/usr/bin/env python3
"""The CPU a change costs, on the node that makes it and on every node that
takes it in: the figures choreo-sim's CPU model charges (docs/BENCHMARKS.md
"Simulated against measured").

Starts N agents on loopback (db1 and N-1 webservers; with --relays, the
first R agents are relays and the rest their leaves), waits until every
agent sees every other, then reads the CPU time of every agent's threads
(/proc/PID/task/*/schedstat: nanoseconds on a CPU, kernel time included)
twice: over --quiet seconds without a change, then over the same time
while db1 makes C changes, evenly spaced, through its control socket (as
`choreo set`; each waits until every webserver logged the change). What
a change costs is the difference of the two rates, divided by C:

* db1: the `set` request, the publication (encode, seal, one copy per
  connection) and the state file written and synced. Run it at two sizes
  of mesh: the difference, per extra member, is the cost of one copy; the
  rest is the request and the state file.
* each webserver: taking the change in (its delivery or, through relays,
  one per relay, the decoding, the merge, the log line).

It also says what one delivery costs at the quiet rate (a webserver's
CPU per second over the messages it received a second), and the slowest
webserver's time to log each change (p50, millisecond log timestamps).
"""
import glob
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Cluster, arguments, metric, parse,  # noqa: E402
                     wait_until)
import reaction  # noqa: E402


def cpu_ns(pid):
    """Nanoseconds on a CPU of every thread of pid so far."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def main():
    ap = arguments(__doc__, agents=50, serf=False)
    ap.add_argument("--changes", type=int, default=100,
                    help="changes made while measuring, at most 4 a "
                         "second (default: %(default)s)")
    ap.add_argument("--quiet", type=float, default=40.0,
                    help="seconds of each reading (default: %(default)s)")
    args = parse(ap)
    c = Cluster(args.choreo, args.keep, args.relay_nice, args.leaf_nice)
    try:
        names, webs = reaction.start_story(c, args)
        relays = [n for n in names if n.startswith("relay")]
        # what the startup sync still sends is not the quiet reading's
        time.sleep(3)
        pids = {n: c.procs[n].pid for n in names}

        def snap():
            return {n: cpu_ns(p) for n, p in pids.items()}

        def msgs():
            return {w: metric(c.sock(w), "choreo_messages_received_total")
                    or 0 for w in webs}

        m0, s0, t0 = msgs(), snap(), time.monotonic()
        time.sleep(args.quiet)
        s1, t1, m1 = snap(), time.monotonic(), msgs()
        quiet_rate = {n: (s1[n] - s0[n]) / (t1 - t0) for n in names}
        slowest = []
        s2, t2 = snap(), time.monotonic()
        for i in range(args.changes):
            state = "maintenance" if i % 2 == 0 else "ready"
            sent = reaction.set_via_socket(c.sock("db1"), state)
            reaction.quiet_while_it_spreads()
            wait_until(lambda: all(len(reaction.logged_changes(c, w)) > i
                                   for w in webs), 60, f"change {i}",
                       step=0.01)
            slowest.append(max((reaction.logged_changes(c, w)[i] * 1e9 -
                                sent) / 1e6 for w in webs))
            time.sleep(max(0.0, t2 + (i + 1) * args.quiet / args.changes -
                           time.monotonic()))
        s3, t3 = snap(), time.monotonic()

        def per_change_us(n):
            busy = (s3[n] - s2[n]) - quiet_rate[n] * (t3 - t2)
            return busy / args.changes / 1e3

        web_change = [per_change_us(w) for w in webs]
        # messages a second at the quiet rate (a batch counts its frames)
        web_rate = [(m1[w] - m0[w]) / (t1 - t0) for w in webs]
        web_quiet = [quiet_rate[w] / 1e3 for w in webs]
        result = {
            "agents": args.agents, "relays": args.relays,
            "changes": args.changes,
            "db1_us_per_change": per_change_us("db1"),
            "web_us_per_change_p50": statistics.median(web_change),
            "web_us_per_change_mean": statistics.mean(web_change),
            "web_quiet_us_per_s_p50": statistics.median(web_quiet),
            "web_quiet_msgs_per_s_p50": statistics.median(web_rate),
            "slowest_p50_ms": statistics.median(slowest),
        }
        if args.relays:
            result["relay_us_per_change"] = [per_change_us(r)
                                             for r in relays]
    finally:
        c.stop()
    if args.json:
        print(json.dumps(result))
    else:
        print(f"change cost, {args.agents} agents, "
              f"{'%d relays' % args.relays if args.relays else 'full mesh'}"
              f", {args.changes} changes: db1 {result['db1_us_per_change']:.0f}"
              f" µs a change; a webserver {result['web_us_per_change_p50']:.0f}"
              f" µs a change (p50; mean {result['web_us_per_change_mean']:.0f})"
              f", {result['web_quiet_us_per_s_p50']:.0f} µs a second quiet "
              f"for {result['web_quiet_msgs_per_s_p50']:.1f} messages; the "
              f"slowest webserver logged it {result['slowest_p50_ms']:.2f} "
              f"ms after the request (p50)")


if __name__ == "__main__":
    sys.exit(main())
