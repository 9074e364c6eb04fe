#!/usr/bin/env python3
"""Every benchmark of bench/, for choreo and Serf in the same run, and one
table of medians, p90 and ratios. bench/run.sh builds choreo in release
mode, gets Serf's binary and calls this; see docs/BENCHMARKS.md.

  reaction     state set on db1 -> script started on every dependent node
               (3, 50 and 200 agents, --reaction-agents; --changes
               changes): choreo with the same
               handler as Serf (/bin/sh -c date) and with bench/stamp;
               Serf with its defaults (tags, lan profile) and at its
               fastest (-profile=local, serf event -coalesce=false)
  convergence  N agents against one seed until all see N members in their
               states (N = 10, 50, 200)
  idle         RSS and CPU per agent over --idle-seconds, 50 agents

choreo runs as a full mesh up to --mesh-max agents and, from
--relay-from agents on, also with --relays of them as relays and the
others their leaves (docs/ARCHITECTURE.md "Relays"); a full mesh larger
than --mesh-max is tried for convergence only, with --mesh-timeout.
  throughput   bench-throughput (messages decoded/opened per CPU second),
               when it is built

--smoke: tiny N and counts, under 30 s, "ok - " lines; the Serf part is
skipped ("SKIP: ") when no serf binary can be had without the network.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import machine, raise_nofile  # noqa: E402
import serf_cluster  # noqa: E402

PY = sys.executable


def run_json(script, *argv, timeout=1800):
    cmd = [PY, os.path.join(HERE, script), "--json", *map(str, argv)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}\n"
                           f"{r.stdout}{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def try_json(rep, what, script, *argv, timeout=1800):
    """run_json for a figure the table can go without (Serf at 200
    agents): a failure is said in the report and gives None."""
    try:
        return run_json(script, *argv, timeout=timeout)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        first = str(e).strip().splitlines()[-1] if str(e).strip() else ""
        rep.out(f"Not measured: {what}: {first}")
        rep.out()
        return None


def load():
    return "%.2f %.2f %.2f" % os.getloadavg()


def fmt(v, unit="ms"):
    if v is None:
        return "—"
    if unit == "ms":
        return f"{v:.0f} ms" if v >= 100 else f"{v:.2f} ms" if v < 10 \
            else f"{v:.1f} ms"
    return f"{v:.2f} {unit}"


def heard(v):
    """A figure from millisecond log timestamps: below 1 ms it says only
    that."""
    return "≤ 1 ms" if v is not None and v < 1 else fmt(v)


def ratio(a, b):
    if a is None or b is None or b <= 0:
        return "—"
    r = a / b
    return f"{r:.0f}×" if r >= 10 else f"{r:.1f}×"


class Report:
    def __init__(self, smoke):
        self.smoke = smoke
        self.lines = []
        self.results = {}

    def out(self, line=""):
        print(line, flush=True)
        self.lines.append(line)

    def ok(self, what):
        if self.smoke:
            print(f"ok - {what}", flush=True)


def topologies(args, n):
    """The choreo topologies measured at n agents: 0 (full mesh) and/or
    the number of relays."""
    if args.smoke:
        return [0, args.relays] if n > args.relays + 1 else [0]
    t = [0] if n <= args.mesh_max else []
    if n >= args.relay_from and args.relays > 0:
        t.append(args.relays)
    return t


def topo_name(relays):
    return "mesh" if relays == 0 else f"{relays} relays"


def reaction(args, rep, serf):
    # The smoke run: 3 agents in a mesh, and 5 with 2 relays.
    n_list = sorted({3, args.relays + 3}) if args.smoke else \
        [int(n) for n in args.reaction_agents.split(",")]
    changes = 4 if args.smoke else args.changes
    base = ["--changes", changes, "--stamp", args.stamp]
    rows = []
    for n in n_list:
        for relays in topologies(args, n):
            if args.smoke and (n == 3) != (relays == 0):
                continue
            topo = ["--relays", relays]
            ch_sh = run_json("reaction.py", "--choreo", args.choreo,
                             "--agents", n, "--handler", "sh", *topo, *base)
            ch_st = run_json("reaction.py", "--choreo", args.choreo,
                             "--agents", n, "--handler", "stamp", *topo,
                             *base)
            ch_so = run_json("reaction.py", "--choreo", args.choreo,
                             "--agents", n, "--handler", "stamp",
                             "--via", "socket", *topo, *base)
            rep.ok(f"reaction choreo {n} agents, {topo_name(relays)}: sh "
                   f"p50 {ch_sh['slowest_p50_ms']:.2f} ms, stamp p50 "
                   f"{ch_st['slowest_p50_ms']:.2f} ms, socket p50 "
                   f"{ch_so['slowest_p50_ms']:.2f} ms")
            rows.append([n, topo_name(relays), ch_sh, ch_st, ch_so, None,
                         None])
        sv_def = sv_fast = None
        if serf:
            if not args.smoke:
                sv_def = try_json(rep, f"Serf default, {n} agents",
                                  "reaction.py", "--tool", "serf", "--serf",
                                  serf, "--agents", n, "--handler", "sh",
                                  "--serf-mode", "tags", "--profile", "lan",
                                  *base)
            sv_fast = try_json(rep, f"Serf fastest, {n} agents",
                               "reaction.py", "--tool", "serf", "--serf",
                               serf, "--agents", n, "--handler", "sh",
                               "--serf-mode", "event", "--no-coalesce",
                               "--profile", "local", *base)
            if sv_fast:
                rep.ok(f"reaction serf {n} agents: fastest p50 "
                       f"{sv_fast['slowest_p50_ms']:.2f} ms")
        for row in rows:
            if row[0] == n:
                row[5], row[6] = sv_def, sv_fast
    rep.results["reaction"] = rows
    rep.out(f"### Reaction: `set` on db1 → script started on every "
            f"dependent node ({changes} changes; slowest dependent per "
            f"change)")
    rep.out()
    rep.out("| agents | choreo | choreo, sh p50 | p90 | choreo, stamp p50 "
            "| p90 | choreo, socket + stamp p50 | p90 | had it (log) p50 | "
            "Serf default p50 | p90 | Serf fastest p50 | p90 | "
            "Serf default ÷ choreo | Serf fastest ÷ choreo |")
    rep.out("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    g = (lambda r, k: r[k] if r else None)
    for n, topo, a, b, s, d, f in rows:
        rep.out(f"| {n} | {topo} | {fmt(a['slowest_p50_ms'])} | "
                f"{fmt(a['slowest_p90_ms'])} | {fmt(b['slowest_p50_ms'])} | "
                f"{fmt(b['slowest_p90_ms'])} | "
                f"{fmt(s['slowest_p50_ms'])} | {fmt(s['slowest_p90_ms'])} | "
                f"{heard(s.get('heard_p50_ms'))} | "
                f"{fmt(g(d, 'slowest_p50_ms'))} | "
                f"{fmt(g(d, 'slowest_p90_ms'))} | "
                f"{fmt(g(f, 'slowest_p50_ms'))} | "
                f"{fmt(g(f, 'slowest_p90_ms'))} | "
                f"{ratio(g(d, 'slowest_p50_ms'), a['slowest_p50_ms'])} | "
                f"{ratio(g(f, 'slowest_p50_ms'), a['slowest_p50_ms'])} |")
    rep.out()
    rep.out("Timed from just before the command starts (`choreo set`, "
            "`serf tags -set state=…` for Serf's default, `serf event "
            "-coalesce=false` with `-profile=local` for its fastest) to the "
            "script's first action. sh: `/bin/sh -c 'date +%s%N >> FILE'` "
            "for both tools (Serf always runs handlers through /bin/sh "
            "-c); stamp: choreo exec'ing bench/stamp directly; socket: "
            "timed from the `set` request on db1's control socket, without "
            "the CLI's own start-up; had it: when the last dependent logged "
            "db1's change (millisecond timestamps), in the socket run, i.e. "
            "without the time all dependents' scripts take to start on the "
            "same cores. Ratios compare the same handler (sh) "
            "and the same start (a command). Load before: " + load())
    rep.out()


def converge(args, rep, serf):
    if args.smoke:
        plan = [(5, 1)]
    else:
        plan = [(n, args.runs_200 if n >= 200 else args.runs)
                for n in map(int, args.converge_agents.split(","))]
    rows = []
    for n, runs in plan:
        topos = topologies(args, n)
        if n > args.mesh_max and not args.smoke:
            topos = [0] + topos  # tried, with a deadline
        sv = None
        if serf:
            sv = try_json(rep, f"Serf convergence, {n} agents",
                          "converge.py", "--tool", "serf", "--serf", serf,
                          "--agents", n, "--runs", runs)
            if sv and sv["median_ms"] is None:
                sv = None
            if sv:
                rep.ok(f"convergence serf {n} agents: median "
                       f"{sv['median_ms']:.0f} ms")
        for relays in topos:
            big_mesh = relays == 0 and n > args.mesh_max
            ch = run_json("converge.py", "--choreo", args.choreo, "--agents",
                          n, "--relays", relays,
                          "--runs", 1 if big_mesh else runs,
                          "--timeout",
                          args.mesh_timeout if big_mesh else 300)
            if ch["median_ms"] is not None:
                rep.ok(f"convergence choreo {n} agents, {topo_name(relays)}:"
                       f" median {ch['median_ms']:.0f} ms")
            rows.append((n, topo_name(relays), len(ch["runs_ms"]) +
                         len(ch["not_converged"]), ch, sv))
    rep.results["converge"] = rows
    rep.out("### Convergence: N agents started against one seed until all "
            "see N members in their states")
    rep.out()
    rep.out("| agents | choreo | runs | choreo median | max | heartbeats "
            "(1 s) | Serf (lan) median | max | Serf ÷ choreo | launch "
            "(choreo / Serf) |")
    rep.out("|---|---|---|---|---|---|---|---|---|---|")
    for n, topo, runs, ch, sv in rows:
        lsv = sorted(sv["launch_ms"])[len(sv["launch_ms"]) // 2] \
            if sv else None
        if ch["median_ms"] is None:
            rep.out(f"| {n} | {topo} | {runs} | not converged within "
                    f"{ch['timeout_s']:.0f} s ("
                    + ", ".join(str(k) for k in ch["not_converged"])
                    + f" of {n} agents short) | | | "
                    f"{fmt(sv['median_ms'] if sv else None)} | "
                    f"{fmt(sv['max_ms'] if sv else None)} | — | — / "
                    f"{fmt(lsv)} |")
            continue
        lch = sorted(ch["launch_ms"])[len(ch["launch_ms"]) // 2]
        rep.out(f"| {n} | {topo} | {runs} | {fmt(ch['median_ms'])} | "
                f"{fmt(ch['max_ms'])} | "
                f"{ch['median_ms'] / ch['heartbeat_ms']:.2f} | "
                f"{fmt(sv['median_ms'] if sv else None)} | "
                f"{fmt(sv['max_ms'] if sv else None)} | "
                f"{ratio(sv['median_ms'] if sv else None, ch['median_ms'])}"
                f" | {fmt(lch)} / {fmt(lsv)} |")
    rep.out()
    rep.out("The clock starts when the first of the N-1 agents is launched, "
            "so the time the harness takes to launch them (last column) is "
            "part of every figure. Load after: " + load())
    rep.out()


def idle(args, rep, serf):
    n = 5 if args.smoke else 50
    secs = 2 if args.smoke else args.idle_seconds
    settle = 0.5 if args.smoke else 5
    ch = run_json("idle.py", "--choreo", args.choreo, "--agents", n,
                  "--seconds", secs, "--settle", settle)
    rep.ok(f"idle choreo {n} agents: RSS {ch['rss_mib_median']:.2f} MiB, "
           f"CPU {ch['cpu_pct_median']:.3f} %")
    chr_ = None
    if args.relays > 0 and n > args.relays:
        chr_ = run_json("idle.py", "--choreo", args.choreo, "--agents", n,
                        "--relays", args.relays, "--seconds", secs,
                        "--settle", settle)
        rep.ok(f"idle choreo {n} agents, {args.relays} relays: RSS "
               f"{chr_['rss_mib_median']:.2f} MiB, CPU "
               f"{chr_['cpu_pct_median']:.3f} %")
    sv = None
    if serf:
        sv = run_json("idle.py", "--tool", "serf", "--serf", serf,
                      "--agents", n, "--seconds", secs, "--settle", settle)
        rep.ok(f"idle serf {n} agents: RSS {sv['rss_mib_median']:.2f} MiB, "
               f"CPU {sv['cpu_pct_median']:.3f} %")
    rep.results["idle"] = (ch, chr_, sv)
    rep.out(f"### Idle cost per agent: {n} agents, {secs:.0f} s")
    rep.out()
    rep.out("| | RSS median | RSS max | PSS median | CPU median (% of a "
            "core) | CPU max | all agents: RSS, CPU |")
    rep.out("|---|---|---|---|---|---|---|")
    for name, r in (("choreo, mesh", ch),
                    (f"choreo, {args.relays} relays (relays included)", chr_),
                    ("Serf (lan)", sv)):
        if r is None:
            rep.out(f"| {name} | — | — | — | — | — | — |")
            continue
        pss = r.get("pss_mib_median")
        rep.out(f"| {name} | {r['rss_mib_median']:.2f} MiB | "
                f"{r['rss_mib_max']:.2f} MiB | "
                + (f"{pss:.2f} MiB" if pss is not None else "—")
                + f" | {r['cpu_pct_median']:.3f} % | "
                f"{r['cpu_pct_max']:.3f} % | {r['rss_mib_total']:.0f} MiB, "
                f"{r['cpu_pct_total']:.2f} % |")
    if sv:
        rep.out(f"| Serf ÷ choreo (mesh) | "
                f"{ratio(sv['rss_mib_median'], ch['rss_mib_median'])} | | "
                f"{ratio(sv.get('pss_mib_median'), ch.get('pss_mib_median'))}"
                f" | {ratio(sv['cpu_pct_median'], ch['cpu_pct_median'])} | "
                f"| |")
    rep.out()


def throughput(args, rep):
    rep.out("### Throughput: messages decoded (and opened, with a key) per "
            "second on one core")
    rep.out()
    exe = args.throughput
    if not exe or not os.access(exe, os.X_OK):
        rep.out("TODO: bench-throughput is not built in this tree "
                "(bench/throughput.c); no figure.")
        rep.ok("throughput # SKIP not built")
        rep.out()
        return
    if args.smoke:
        rep.ok(f"throughput: {exe} is built (not run in the smoke test)")
        return
    r = subprocess.run([exe], capture_output=True, text=True, timeout=600)
    rep.out("```")
    for line in r.stdout.strip().splitlines():
        rep.out(line)
    rep.out("```")
    rep.out()


def main():
    ap = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--choreo", required=True)
    ap.add_argument("--stamp", required=True)
    ap.add_argument("--throughput", default=None,
                    help="the bench-throughput executable, if built")
    ap.add_argument("--serf", default=None,
                    help="serf binary (default: extract Debian's package)")
    ap.add_argument("--no-serf", action="store_true")
    ap.add_argument("--changes", type=int, default=30)
    ap.add_argument("--reaction-agents", default="3,50,200",
                    help="cluster sizes for the reaction benchmark")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--runs-200", type=int, default=3)
    ap.add_argument("--converge-agents", default="10,50,200",
                    help="cluster sizes for the convergence benchmark")
    ap.add_argument("--idle-seconds", type=float, default=60)
    ap.add_argument("--relays", type=int, default=2,
                    help="relays in the relay topology (0: none)")
    ap.add_argument("--relay-from", type=int, default=50,
                    help="cluster size from which the relay topology is "
                         "measured too")
    ap.add_argument("--mesh-max", type=int, default=100,
                    help="the largest full mesh measured in full")
    ap.add_argument("--mesh-timeout", type=float, default=120,
                    help="seconds a larger full mesh gets to converge")
    ap.add_argument("--only", default="reaction,converge,idle,throughput")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()
    raise_nofile()
    rep = Report(args.smoke)
    m = machine()
    serf = None
    if not args.no_serf:
        serf, why = serf_cluster.obtain(
            args.serf, download=True, timeout=10 if args.smoke else 120)
        if serf is None:
            print(f"SKIP: Serf: {why}", flush=True)
    t0 = time.monotonic()
    rep.out(f"## choreo and Serf, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    rep.out()
    rep.out(f"Machine: {m['nproc']} CPUs, {m['cpu']}, Linux {m['kernel']}; "
            f"load average at start {load()}. Serf: "
            + (f"{serf_cluster.version(serf)} ({serf})" if serf
               else "not available"))
    rep.out()
    only = args.only.split(",")
    if "reaction" in only:
        reaction(args, rep, serf)
    if "converge" in only:
        converge(args, rep, serf)
    if "idle" in only:
        idle(args, rep, serf)
    if "throughput" in only:
        throughput(args, rep)
    if args.smoke:
        r = run_json("soak.py", "--choreo", args.choreo, "--agents", 6,
                     "--churn", 2, "--seconds", 5, "--warmup", 1,
                     "--kill-every", 2, "--sample-every", 1)
        rep.ok(f"soak: {r['sets']} changes, {r['kills']} kills, "
               f"descriptors growth {r['fd_growth_max']:+d}")
        r = run_json("relay_load.py", "--choreo", args.choreo, "--leaves",
                     100, "--rates", 200, "--seconds", 1, timeout=120)
        row = r["rows"][0]
        if row["received"] != row["sent"]:
            raise RuntimeError(f"relay_load: the relay took in "
                               f"{row['received']} of {row['sent']}")
        rep.ok(f"relay_load: {row['received']} heartbeats taken in, "
               f"{row['us_per_msg']} µs each")
    rep.out(f"Total time {time.monotonic() - t0:.0f} s; load average at end "
            f"{load()}.")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"machine": m, "results": rep.results}, f, indent=1,
                      default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
