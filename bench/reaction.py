#!/usr/bin/env python3
"""Reaction latency: time from the command that changes the database node's
state to the behaviour script starting on every webserver that depends on
it, for choreo or for Serf.

Starts N agents on loopback (db1 plus N-1 webservers), then flips db1
between maintenance and ready C times. For each change it measures, from
just before the command is started, the moment each webserver's script
began (the script's first action writes a wall-clock timestamp). Prints the
median and p90 of the slowest webserver per change, and of every
webserver.

choreo: the webservers' behaviour watches group db; the command is
`choreo set STATE` (--via cli) or the same request written straight to
the control socket (--via socket, without the CLI's own start-up).

Serf (--tool serf): the webservers have an event handler; the command is
either `serf tags -set state=STATE` (--serf-mode tags: the handler runs on
member-update; Serf coalesces member events, which can't be turned off)
or `serf event [-coalesce=false] chg STATE` (--serf-mode event: a user
event; --no-coalesce for Serf's fastest path). --profile local is Serf's
fastest timing profile; lan is its default.

Two kinds of script: `stamp` (a tiny C program, bench/stamp.c, so the
figure is the tool's own cost plus one exec) and `sh` (`/bin/sh -c 'date
+%s%N >> FILE'`: one shell and one date). Serf always runs its handlers
through `/bin/sh -c`, so for Serf `stamp` means a shell that runs stamp;
`sh` is the same work for both tools and is the style to compare them
with. `none` (choreo only) runs no script and times the moment each
dependent logged the change instead (millisecond timestamps): the
message's way to every dependent, without the cost of starting
every dependent's script on the same cores.

--identity (choreo): node identity on every agent (an operator key, a
signing key and a certificate per agent, `identity:` with required: true
in every configuration): each change is signed by db1 and verified by
every receiver. The result then says how many signatures the webservers
verified and how many records they took from the cache.
"""
import datetime
import json
import os
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Cluster, Identity, arguments, free_port,  # noqa
                     loopback, metric, parse, percentile, relay_roles,
                     wait_until)
import serf_cluster  # noqa: E402

SH_DATE = 'date +"- %s%N" >> '


def set_via_socket(path, state):
    """Send the set request on the control socket, as libchoreo does;
    returns the time just before sending."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        req = json.dumps({"cmd": "set", "state": state}).encode() + b"\n"
        t0 = time.time_ns()
        s.sendall(req)
        reply = s.makefile().readline()
        if not json.loads(reply).get("ok"):
            raise SystemExit(f"set refused: {reply}")
        return t0


def stamps(path):
    try:
        with open(path) as f:
            return [int(line.split()[1]) for line in f if line.strip()]
    except (FileNotFoundError, IndexError, ValueError):
        return []


def behaviour(handler, stamp_file):
    cmd = json.dumps(handler + [stamp_file])
    return f"""behaviours:
  - name: holding-page
    peers: {{group: db}}
    when: {{any: maintenance}}
    run: {cmd}
    revert: {cmd}
"""


def quiet_while_it_spreads():
    """Wait before reading the webservers' files: the times come from
    what they wrote, and reading every file while the change spreads
    would take the cores from the agents being timed (tens of files
    parsed every few milliseconds, on the same two cores)."""
    time.sleep(0.25)


def measure(args, d, webs, change):
    """Make args.changes changes with change(i, state) -> t0 (ns) and
    collect the latencies of every web's script."""
    slowest, each = [], []
    measure.t0s = []
    for i in range(args.changes):
        state = "maintenance" if i % 2 == 0 else "ready"
        t0 = change(i, state)
        measure.t0s.append(t0)
        quiet_while_it_spreads()
        wait_until(lambda: all(len(stamps(f"{d}/{w}.stamps")) > i
                               for w in webs), 60, f"change {i}")
        lat = [(stamps(f"{d}/{w}.stamps")[i] - t0) / 1e6 for w in webs]
        slowest.append(max(lat))
        each.extend(lat)
    return slowest, each


def logged_changes(c, w):
    """The wall-clock times (s) at which agent w logged db1's changes."""
    return [datetime.datetime.strptime(
        line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        for line in c.log(w).splitlines() if " peer db1 state: " in line]


def measure_logged(args, c, webs, change):
    """--handler none: no script anywhere; each change is timed to the
    moment each web logged it (millisecond timestamps)."""
    slowest, each = [], []
    for i in range(args.changes):
        state = "maintenance" if i % 2 == 0 else "ready"
        t0 = change(i, state)
        quiet_while_it_spreads()
        wait_until(lambda: all(len(logged_changes(c, w)) > i for w in webs),
                   60, f"change {i}", step=0.05)
        lat = [(logged_changes(c, w)[i] * 1e9 - t0) / 1e6 for w in webs]
        slowest.append(max(lat))
        each.extend(lat)
    return slowest, each


def heard(c, webs, t0s):
    """When each web logged db1's change ("peer db1 state: A -> B", a
    millisecond timestamp), in ms after the change's t0: the slowest per
    change. The message's way to every agent without the scripts' start,
    which on one machine means forking every dependent's script on the
    same cores."""
    logged = {}
    for w in webs:
        logged[w] = [datetime.datetime.strptime(
            line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
            for line in c.log(w).splitlines() if " peer db1 state: " in line]
    out = []
    for i, t0 in enumerate(t0s):
        lat = [(logged[w][i] * 1e9 - t0) / 1e6 for w in webs
               if len(logged[w]) > i]
        if len(lat) == len(webs):
            out.append(max(lat))
    return out


def start_story(c, args, extra=None):
    """Start the story's cluster in c: with --relays, the relays first
    (the seed among them, counted among --agents), then db1 and the
    webservers, their leaves; otherwise a full mesh joining through db1.
    extra(name, group) is YAML added to an agent's configuration. Returns
    (names, webs) once every agent sees every other and has finished its
    startup sync."""
    relays = [f"relay{i}" for i in range(args.relays)]
    names = relays + ["db1"] + [
        f"web{i}" for i in range(1, args.agents - args.relays)]
    webs = [n for n in names if n.startswith("web")]
    ports = {n: free_port() for n in names}
    index = {n: i for i, n in enumerate(names)}
    roles = relay_roles(
        names, args.relays,
        lambda n: f"tcp://{loopback(index[n])}:{ports[n]}")
    for i, n in enumerate(names):
        group = "web" if n in webs else "db" if n == "db1" else "relay"
        c.config(n, ports[n], group, heartbeat=args.heartbeat,
                 extra=extra(n, group) if extra else "", host=loopback(i),
                 **roles[n])
        c.start(n)
    for n in names:
        wait_until(lambda n=n: len((c.status(n) or {"peers": []})
                                   ["peers"]) == args.agents - 1,
                   120, f"{n} to see everyone")
    # Measure only once every agent has finished its startup sync.
    for n in names:
        wait_until(lambda n=n: "synchronised" in c.log(n), 60,
                   f"{n} to sync")
    return names, webs


def run_choreo(args):
    c = Cluster(args.choreo, args.keep, args.relay_nice,
                args.leaf_nice)
    try:
        if args.handler == "stamp":
            handler = [args.stamp]
        elif args.handler == "none":
            handler = None
        else:
            # sh runs `date` first: its timestamp is the script's first act.
            handler = ["/bin/sh", "-c", SH_DATE + '"$0"']
        ident = Identity(c.choreo, c.d) if args.identity else None

        def extra(n, group):
            text = behaviour(handler, f"{c.d}/{n}.stamps") \
                if group == "web" and handler else ""
            return text + (ident.section(n, group) if ident else "")

        names, webs = start_story(c, args, extra)

        def change(i, state):
            if args.via == "cli":
                t0 = time.time_ns()
                subprocess.run([c.choreo, "set", state, "--socket",
                                c.sock("db1")], check=True)
                return t0
            return set_via_socket(c.sock("db1"), state)

        if handler is None:
            result = measure_logged(args, c, webs, change)
        else:
            result = measure(args, c.d, webs, change)
            run_choreo.heard = heard(c, webs, measure.t0s)
        run_choreo.identity = {
            k: sum(metric(c.sock(w), f"choreo_identity_{k}_total") or 0
                   for w in webs)
            for k in ("verifications", "cache_hits", "unsigned")}
        return result
    finally:
        c.stop()


def run_serf(args):
    c = serf_cluster.SerfCluster(args.serf, args.profile, args.keep)
    try:
        names = ["db1"] + [f"web{i}" for i in range(1, args.agents)]
        event = "member-update" if args.serf_mode == "tags" else "user:chg"
        c.add("db1", {"state": "ready"})
        c.wait_up("db1")
        for n in names[1:]:
            f = f"{c.d}/{n}.stamps"
            cmd = (f"{args.stamp} {f}" if args.handler == "stamp"
                   else SH_DATE + f)
            c.add(n, {"group": "web"}, join="db1",
                  handlers=[f"{event}={cmd}"])
        for n in names:
            wait_until(lambda n=n: len(serf_cluster.alive_view(
                c.members(n) or [])) == args.agents, 120,
                f"serf {n} to see everyone", 0.05)
        # Let the joins' member events (and their coalescing) pass.
        time.sleep(2)
        rpc = c.rpc_addr("db1")

        def change(i, state):
            if args.serf_mode == "tags":
                argv = [args.serf, "tags", f"-rpc-addr={rpc}",
                        "-set", f"state={state}"]
            else:
                argv = [args.serf, "event", f"-rpc-addr={rpc}",
                        f"-coalesce={'false' if args.no_coalesce else 'true'}",
                        "chg", state]
            t0 = time.time_ns()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
            return t0

        return measure(args, c.d, names[1:], change)
    finally:
        c.stop()


def main():
    ap = arguments(__doc__, agents=3)
    ap.add_argument("--stamp", default="build/bench/stamp")
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--handler", choices=["stamp", "sh", "none"],
                    default="stamp",
                    help="none (choreo): no script; the time each "
                         "dependent logged the change, ms resolution")
    ap.add_argument("--via", choices=["cli", "socket"], default="cli",
                    help="choreo: cli: time from starting `choreo set` (the "
                    "figure comparable with Serf's); socket: from the "
                    "request on the control socket, without the CLI's own "
                    "start-up")
    ap.add_argument("--serf-mode", choices=["tags", "event"], default="tags")
    ap.add_argument("--no-coalesce", action="store_true",
                    help="serf event -coalesce=false")
    ap.add_argument("--identity", action="store_true",
                    help="choreo: node identity on every agent (required: "
                         "true): records signed and verified")
    args = parse(ap)
    if args.identity and args.tool != "choreo":
        ap.error("--identity is choreo's")
    args.stamp = os.path.abspath(args.stamp)
    if args.tool == "choreo":
        slowest, each = run_choreo(args)
        what = f"choreo set, via {args.via}" + (
            f", {args.relays} relays" if args.relays else ", full mesh") + (
            ", identity" if args.identity else "")
    else:
        slowest, each = run_serf(args)
        what = (f"serf {args.serf_mode}" +
                (" -coalesce=false" if args.no_coalesce
                 and args.serf_mode == "event" else "") +
                f", profile {args.profile}")
    result = {
        "tool": args.tool, "what": what,
        "agents": args.agents, "changes": args.changes,
        "handler": args.handler,
        "slowest_p50_ms": statistics.median(slowest),
        "slowest_p90_ms": percentile(slowest, 90),
        "each_p50_ms": statistics.median(each),
        "each_p90_ms": percentile(each, 90),
        "slowest_ms": slowest,
    }
    if args.tool == "choreo" and getattr(run_choreo, "heard", None):
        result["heard_p50_ms"] = statistics.median(run_choreo.heard)
        result["heard_p90_ms"] = percentile(run_choreo.heard, 90)
    if args.tool == "choreo":
        result["identity"] = args.identity
        # The webservers' identity counters at the end (all 0 without).
        result["identity_counters"] = run_choreo.identity
        if args.identity and run_choreo.identity["verifications"] == 0:
            raise SystemExit("--identity: the webservers verified no "
                             "signature")
    v = result.get("identity_counters", {})
    if args.json:
        print(json.dumps(result))
    else:
        print(f"reaction, {what}, {args.agents} agents, {args.changes} "
              f"changes, {args.handler} script: slowest dependent p50 "
              f"{result['slowest_p50_ms']:.2f} ms, p90 "
              f"{result['slowest_p90_ms']:.2f} ms; each dependent p50 "
              f"{result['each_p50_ms']:.2f} ms, p90 "
              f"{result['each_p90_ms']:.2f} ms"
              + (f"; every dependent had the change (logged, ms "
                 f"resolution) p50 {result['heard_p50_ms']:.1f} ms, p90 "
                 f"{result['heard_p90_ms']:.1f} ms"
                 if "heard_p50_ms" in result else "")
              + (f"; identity: the webservers verified "
                 f"{v['verifications']:.0f} signatures, "
                 f"{v['cache_hits']:.0f} cache hits"
                 if args.identity else ""))


if __name__ == "__main__":
    sys.exit(main())
