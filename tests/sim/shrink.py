#!/usr/bin/env python3
"""Shrink a failing choreo-sim run: given the arguments of a run that
breaks an invariant, find a smaller run that still breaks one, and print
its command line.

    tests/sim/shrink.py --sim build/tests/sim/choreo-sim -- \\
        --nodes 60 --relays 2 --seed 9 --seconds 12 --lost-after 1100 \\
        --loss 0.3

Each step tries one reduction and keeps it if the run still fails (exit
status 1 and "invariant broken" in its output), greedily, until no
reduction of any parameter fails any more or --budget runs were made:

* --nodes: halved, then less a quarter, then one less (never below 3,
  nor below relays + 2);
* --seconds: halved, then one less (never below 6);
* --relays: one less (a relay cluster that fails as a mesh is simpler);
* --scenario: steady instead of another one;
* --loss, --dup: halved, then 0;
* --changes: halved, then 0;
* --skew-ms: 0.

The seed stays: a simulation is deterministic, so the same arguments
fail the same way, and the shrunk line reproduces the failure exactly.
Exit status: 0 when a failing run was found (and printed), 2 when the
given run does not fail.
"""
import argparse
import shlex
import subprocess
import sys

DEFAULTS = {"--nodes": None, "--relays": "0", "--seconds": "20",
            "--loss": "0", "--dup": "0", "--changes": "9",
            "--skew-ms": "0", "--scenario": "steady"}


def parse(argv):
    opts, order = {}, []
    i = 0
    while i < len(argv):
        k = argv[i]
        if not k.startswith("--") or i + 1 >= len(argv):
            sys.exit(f"shrink.py: expected --name value pairs, got {k!r}")
        opts[k] = argv[i + 1]
        order.append(k)
        i += 2
    return opts, order


def line(opts):
    return [x for k, v in opts.items() for x in (k, v)]


class Runner:
    def __init__(self, sim, budget):
        self.sim, self.budget, self.runs = sim, budget, 0

    def fails(self, opts):
        if self.runs >= self.budget:
            return False
        self.runs += 1
        r = subprocess.run([self.sim] + line(opts), capture_output=True,
                           text=True)
        out = r.stdout + r.stderr
        bad = r.returncode == 1 and "invariant broken" in out
        print(f"# run {self.runs}: {'fails' if bad else 'holds'}: "
              f"{' '.join(line(opts))}", file=sys.stderr, flush=True)
        return bad


def candidates(opts):
    """Smaller variants of opts, the boldest first."""
    def get(k):
        return opts.get(k, DEFAULTS.get(k))

    n, relays = int(get("--nodes")), int(get("--relays"))
    floor = max(3, relays + 2)
    for m in (n // 2, n - n // 4, n - 1):
        if floor <= m < n:
            yield {**opts, "--nodes": str(m)}
    s = int(get("--seconds"))
    for t in (s // 2, s - 1):
        if 6 <= t < s:
            yield {**opts, "--seconds": str(t)}
    if relays > 0:
        yield {**opts, "--relays": str(relays - 1)}
    if get("--scenario") != "steady":
        yield {**opts, "--scenario": "steady"}
    for k in ("--loss", "--dup"):
        p = float(get(k))
        if p > 0:
            for q in (p / 2, 0.0):
                if q < 0.001:
                    q = 0.0
                yield {**opts, k: f"{q:g}"}
    c = int(get("--changes"))
    for d in (c // 2, 0):
        if d < c:
            yield {**opts, "--changes": str(d)}
    if int(get("--skew-ms")) > 0:
        yield {**opts, "--skew-ms": "0"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", required=True, help="the choreo-sim binary")
    ap.add_argument("--budget", type=int, default=60,
                    help="runs at most (default 60)")
    ap.add_argument("args", nargs=argparse.REMAINDER,
                    help="-- then the failing run's arguments")
    a = ap.parse_args()
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    opts, _ = parse(args)
    if "--nodes" not in opts:
        sys.exit("shrink.py: the run needs --nodes")
    run = Runner(a.sim, a.budget)
    if not run.fails(opts):
        print("shrink.py: the run given does not break an invariant",
              file=sys.stderr)
        return 2
    progress = True
    while progress and run.runs < run.budget:
        progress = False
        for c in candidates(opts):
            if run.fails(c):
                opts, progress = c, True
                break
    print(shlex.join([a.sim] + line(opts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
