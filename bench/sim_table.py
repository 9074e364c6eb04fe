#!/usr/bin/env python3
"""Run choreo-sim for several cluster sizes and seeds, and print one
markdown row per size with the median over the seeds of each figure of
the summary line (docs/BENCHMARKS.md "Simulation").

    bench/sim_table.py --sim build-rel/tests/sim/choreo-sim \\
        --nodes 200 1000 --relays 2 --loss 0.01 --seconds 20 --seeds 5

Runs go one after another, or --jobs J of them at once (a 1,000-node run
holds about 260 MB and a 5,000-node run about 5 GB: mind the memory);
each summary line is printed to stderr as it comes, and a run whose
invariants did not hold is reported and left out of the medians.
"""
import argparse
import concurrent.futures
import re
import statistics
import subprocess
import sys

NUM = r"([0-9.]+)"
FIELDS = {
    "cold_ms": rf"cold {NUM} ms",
    "cold_hb": rf"cold [0-9.]+ ms \({NUM} heartbeats\)",
    "all_p50": rf"change to all p50 {NUM} ms",
    "all_p99": rf"change to all p50 [0-9.]+ ms p99 {NUM} ms",
    "q99_p50": rf"to 99% p50 {NUM} ms",
    "q99_p99": rf"to 99% p50 [0-9.]+ ms p99 {NUM} ms",
    "leaf_rx_msg": rf"leaf rx {NUM} msg/s",
    "leaf_rx_kb": rf"leaf rx [0-9.]+ msg/s \(p99 [0-9.]+\) {NUM} kB/s",
    "leaf_dec": rf"leaf rx .*?decodes {NUM}/s",
    "leaf_tx_msg": rf"leaf rx .*?tx {NUM} msg/s",
    "relay_rx_msg": rf"relay rx {NUM} msg/s",
    "relay_rx_kb": rf"relay rx [0-9.]+ msg/s \(p99 [0-9.]+\) {NUM} kB/s",
    "relay_tx_msg": rf"relay rx .*?tx {NUM} msg/s",
    "relay_tx_kb": rf"relay rx .*?tx [0-9.]+ msg/s \(p99 [0-9.]+\) {NUM} kB/s",
}


def run(sim, n, relays, seed, extra):
    cmd = [sim, "--nodes", str(n), "--relays", str(relays), "--seed",
           str(seed)] + extra
    out = subprocess.run(cmd, capture_output=True, text=True)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    print(line or out.stderr.strip(), file=sys.stderr, flush=True)
    if out.returncode != 0 or "invariants: ok" not in line:
        return None
    vals = {}
    for k, rx in FIELDS.items():
        m = re.search(rx, line)
        vals[k] = float(m.group(1)) if m else None
    return vals


def med(rows, k):
    xs = [r[k] for r in rows if r.get(k) is not None]
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", required=True)
    ap.add_argument("--nodes", type=int, nargs="+", required=True)
    ap.add_argument("--relays", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--loss", default="0.01")
    ap.add_argument("--seconds", default="20")
    ap.add_argument("--jobs", type=int, default=1,
                    help="runs at once (each takes a core)")
    ap.add_argument("extra", nargs="*", help="more choreo-sim arguments")
    a = ap.parse_args()
    extra = ["--loss", a.loss, "--seconds", a.seconds] + a.extra
    print("| nodes | relays | cold convergence | change to all p50 | p99 | "
          "to 99 % p50 | p99 | leaf rx msg/s | leaf rx kB/s | "
          "leaf decodes/s | relay rx msg/s | relay rx kB/s | relay tx msg/s "
          "| relay tx kB/s | runs |")
    print("|" + "---|" * 15)
    for n in a.nodes:
        with concurrent.futures.ThreadPoolExecutor(max(1, a.jobs)) as ex:
            rows = [r for r in ex.map(
                lambda s: run(a.sim, n, a.relays, s, extra),
                range(1, a.seeds + 1)) if r]
        if not rows:
            print(f"| {n:,} | {a.relays} | no run held its invariants |"
                  + " |" * 12)
            continue
        print(f"| {n:,} | {a.relays} | {med(rows, 'cold_ms'):.0f} ms "
              f"({med(rows, 'cold_hb'):.1f} heartbeats) | "
              f"{med(rows, 'all_p50'):.2f} ms | {med(rows, 'all_p99'):.2f} ms "
              f"| {med(rows, 'q99_p50'):.2f} ms | {med(rows, 'q99_p99'):.2f} "
              f"ms | {med(rows, 'leaf_rx_msg'):.1f} | "
              f"{med(rows, 'leaf_rx_kb'):.1f} | {med(rows, 'leaf_dec'):.0f} | "
              f"{med(rows, 'relay_rx_msg'):,.0f} | "
              f"{med(rows, 'relay_rx_kb'):,.0f} | "
              f"{med(rows, 'relay_tx_msg'):,.0f} | "
              f"{med(rows, 'relay_tx_kb'):,.0f} | {len(rows)} of {a.seeds} |",
              flush=True)


if __name__ == "__main__":
    main()
