#!/usr/bin/env python3
"""Reaction latency of choreo: time from `choreo set` on the database node
to the behaviour script starting on every webserver that depends on it.

Starts N agents on loopback (db1 plus N-1 webservers whose behaviour
watches group db), then flips db1 between maintenance and ready C times.
For each change it measures, from just before the `choreo set` command is
started, the moment each webserver's script began (the script's first
action writes a wall-clock timestamp). Prints the median and p90 of the
slowest webserver per change, and of every webserver.

Two kinds of script: `stamp` (a tiny C program, so the figure is choreo's
own cost plus one exec) and `sh` (`/bin/sh -c 'date +%s%N'`, the method
used for Serf's figures in docs/BENCHMARKS.md).
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def write_config(d, name, port, groups, join, handler, heartbeat):
    cfg = f"""node:
  name: {name}
  cluster: bench
  groups: [{groups}]
network:
  listen: tcp://127.0.0.1:{port}
  join: [{', '.join(join)}]
  heartbeat: {heartbeat}
  lost_after: 10s
control:
  socket: {d}/{name}.sock
state_dir: {d}/{name}.state
"""
    if groups == "web":
        cfg += f"""behaviours:
  - name: holding-page
    peers: {{group: db}}
    when: {{any: maintenance}}
    run: {json.dumps(handler + [f"{d}/{name}.stamps"])}
    revert: {json.dumps(handler + [f"{d}/{name}.stamps"])}
"""
    path = f"{d}/{name}.yaml"
    with open(path, "w") as f:
        f.write(cfg)
    return path


def status(choreo, sock):
    out = subprocess.run([choreo, "status", "--json", "--socket", sock],
                         capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else None


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.005)
    raise SystemExit(f"timed out waiting for {what}")


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
    except FileNotFoundError:
        return []


def run(args):
    d = tempfile.mkdtemp(prefix="choreo-bench-")
    procs = []
    try:
        if args.handler == "stamp":
            handler = [args.stamp]
        else:
            # sh runs `date` first: its timestamp is the script's first act.
            handler = ["/bin/sh", "-c", 'date +"- %s%N" >> "$0"']
        ports = [free_port() for _ in range(args.agents)]
        names = ["db1"] + [f"web{i}" for i in range(1, args.agents)]
        seed = f"tcp://127.0.0.1:{ports[0]}"
        for i, name in enumerate(names):
            path = write_config(d, name, ports[i], "db" if i == 0 else "web",
                                [] if i == 0 else [seed], handler,
                                args.heartbeat)
            log = open(f"{d}/{name}.log", "w")
            procs.append(subprocess.Popen([args.choreo, "agent", "-c", path],
                                          stderr=log))
        for name in names:
            wait_until(lambda n=name: (status(args.choreo, f"{d}/{n}.sock") or
                                       {"peers": []})["peers"].__len__()
                       == args.agents - 1, 60, f"{name} to see everyone")
        # Measure only once every agent has finished its startup sync.
        for name in names:
            wait_until(lambda n=name: "synchronised" in
                       open(f"{d}/{n}.log").read(), 60, f"{name} to sync")
        webs = names[1:]
        slowest, each = [], []
        for i in range(args.changes):
            state = "maintenance" if i % 2 == 0 else "ready"
            if args.via == "cli":
                t0 = time.time_ns()
                subprocess.run([args.choreo, "set", state, "--socket",
                                f"{d}/db1.sock"], check=True)
            else:
                t0 = set_via_socket(f"{d}/db1.sock", state)
            wait_until(lambda: all(len(stamps(f"{d}/{w}.stamps")) > i
                                   for w in webs), 30, f"change {i}")
            lat = [(stamps(f"{d}/{w}.stamps")[i] - t0) / 1e6 for w in webs]
            slowest.append(max(lat))
            each.extend(lat)
        return slowest, each
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--choreo", default="build/choreo")
    ap.add_argument("--stamp", default="build/bench/stamp")
    ap.add_argument("--agents", type=int, default=3)
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--handler", choices=["stamp", "sh"], default="stamp")
    ap.add_argument("--heartbeat", default="1s")
    ap.add_argument("--via", choices=["cli", "socket"], default="cli",
                    help="cli: time from starting `choreo set` (the figure "
                    "comparable with Serf's); socket: from the request on the "
                    "control socket, without the CLI's own start-up")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    args.choreo = os.path.abspath(args.choreo)
    args.stamp = os.path.abspath(args.stamp)
    slowest, each = run(args)
    result = {
        "agents": args.agents, "changes": args.changes,
        "handler": args.handler, "via": args.via,
        "slowest_p50_ms": statistics.median(slowest),
        "slowest_p90_ms": percentile(slowest, 90),
        "each_p50_ms": statistics.median(each),
        "each_p90_ms": percentile(each, 90),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"choreo reaction, {args.agents} agents, {args.changes} changes, "
              f"{args.handler} script, via {args.via}: slowest dependent p50 "
              f"{result['slowest_p50_ms']:.2f} ms, p90 "
              f"{result['slowest_p90_ms']:.2f} ms; each dependent p50 "
              f"{result['each_p50_ms']:.2f} ms, p90 {result['each_p90_ms']:.2f} ms")


if __name__ == "__main__":
    sys.exit(main())
