#!/usr/bin/env python3
"""Reaction latency with and without node identity, in the same run:
bench/reaction.py without --identity (A) and with it (B), interleaved A,
B, A, B… --pairs times, so that whatever else loads the machine meanwhile
weighs on both alike. Every run is a new cluster of --agents agents
making --changes changes.

Prints, for A and B: the median over all their changes of the slowest
dependent's latency, and the median of the runs' p50s; then the median
of the pairs' differences (B - A, per pair of neighbouring runs) with
its quartiles and a 95 % bootstrap interval, the load average before
and after, and the webservers' verification counts (each change of B
verified by every dependent). With --json, one JSON document instead.

Example (docs/BENCHMARKS.md "Identity"):
  bench/identity_reaction.py --choreo /tmp/rel/choreo \\
      --stamp /tmp/rel/bench/stamp --pairs 10
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def one(args, identity):
    cmd = [sys.executable, os.path.join(HERE, "reaction.py"), "--json",
           "--choreo", args.choreo, "--stamp", args.stamp,
           "--agents", str(args.agents), "--changes", str(args.changes),
           "--handler", args.handler, "--via", args.via]
    if identity:
        cmd.append("--identity")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}\n"
                         f"{r.stderr.strip()}")
    return json.loads(r.stdout)


def quartiles(values):
    """The 25th and 75th percentiles (the middle half lies between)."""
    if len(values) < 2:
        return [values[0], values[0]]
    q = statistics.quantiles(values, n=4)
    return [q[0], q[2]]


def median_interval(values, resamples=2000, seed=1):
    """A 95 % bootstrap interval of the median of values (seeded: the
    same values give the same interval)."""
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(values, k=len(values)))
                  for _ in range(resamples))
    return [meds[int(0.025 * resamples)], meds[int(0.975 * resamples) - 1]]


def main():
    ap = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--choreo", default="build/choreo")
    ap.add_argument("--stamp", default="build/bench/stamp")
    ap.add_argument("--pairs", type=int, default=10,
                    help="runs of each, interleaved (default: %(default)s)")
    ap.add_argument("--agents", type=int, default=3)
    ap.add_argument("--changes", type=int, default=40)
    ap.add_argument("--handler", default="stamp",
                    choices=["stamp", "sh", "none"])
    ap.add_argument("--via", default="socket", choices=["cli", "socket"])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.pairs < 1:
        ap.error("--pairs must be at least 1")
    if args.handler == "none":
        ap.error("--handler none has millisecond resolution only")

    load_before = os.getloadavg()
    runs = {False: [], True: []}
    for _ in range(args.pairs):
        for identity in (False, True):
            runs[identity].append(one(args, identity))
    load_after = os.getloadavg()

    def summary(rs):
        return {
            "runs": len(rs),
            "slowest_p50_ms": statistics.median(
                v for r in rs for v in r["slowest_ms"]),
            "median_of_runs_p50_ms": statistics.median(
                r["slowest_p50_ms"] for r in rs),
            "each_median_of_runs_p50_ms": statistics.median(
                r["each_p50_ms"] for r in rs),
            "runs_p50_ms": [r["slowest_p50_ms"] for r in rs],
            "verifications": [r["identity_counters"]["verifications"]
                              for r in rs],
        }

    a, b = summary(runs[False]), summary(runs[True])
    diffs = [y["slowest_p50_ms"] - x["slowest_p50_ms"]
             for x, y in zip(runs[False], runs[True])]
    result = {"agents": args.agents, "changes": args.changes,
              "handler": args.handler, "via": args.via,
              "without": a, "with": b,
              "pair_diff_median_ms": statistics.median(diffs),
              "pair_diff_quartiles_ms": quartiles(diffs),
              "pair_diff_median_95_ms": median_interval(diffs),
              "pair_diffs_ms": diffs,
              "load_before": load_before, "load_after": load_after,
              "nproc": os.cpu_count()}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"reaction, {args.agents} agents, {args.changes} changes per run, "
          f"{args.handler} script, via {args.via}; {args.pairs} pairs "
          f"interleaved; load {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after ({os.cpu_count()} cores)")
    for name, s in (("without identity", a), ("with identity", b)):
        print(f"  {name:17} slowest dependent p50 "
              f"{s['slowest_p50_ms']:.2f} ms over all changes, "
              f"{s['median_of_runs_p50_ms']:.2f} ms median of the runs' "
              f"p50; each dependent {s['each_median_of_runs_p50_ms']:.2f}"
              f" ms; verifications per run {s['verifications']}")
    pooled = b["slowest_p50_ms"] - a["slowest_p50_ms"]
    print(f"  difference (with - without): {pooled:+.2f} ms over all "
          f"changes, {statistics.median(diffs):+.2f} ms median of the "
          f"pairs' differences (middle half "
          f"{result['pair_diff_quartiles_ms'][0]:+.2f} to "
          f"{result['pair_diff_quartiles_ms'][1]:+.2f} ms; 95 % interval of "
          f"that median {result['pair_diff_median_95_ms'][0]:+.2f} to "
          f"{result['pair_diff_median_95_ms'][1]:+.2f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
