#!/usr/bin/python3
"""faults.py — the fault-injection suite (docs/RELIABILITY.md).

Five or more real agents, each in a network namespace of its own, joined by
a bridge in a hub namespace; a key ring seals every message. Every web
runs a level behaviour ({any: maintenance} on the db group) and an event
behaviour (on: change), both recording what they were called for. For each
fault: db1 is driven through random states while the fault is active, the
fault is healed, db1 takes a final state, and the invariants are checked:

  I1  every agent's view of every live node equals that node's own record,
      within a bound in heartbeats (TRUTH_BOUND_HB), and the time it took
      is recorded (I4);
  I2  on every web the level behaviour's calls alternate run/revert within
      one agent lifetime (an action interrupted by a crash may be run
      again, never skipped) and the last one matches the truth;
      the event behaviour's last call saw db1's final state;
  I3  every agent is still running, and no log has a sanitizer report;
  FD  a web is then killed, and every other agent sees it lost within
      lost_after + one heartbeat (+ POLL_SLACK_MS of slack for a loaded
      machine), timed by each agent's own lost event (choreo watch).

With --relays R (R > 0), R more agents, relay1..relayR (group relay,
network.relay: true, joining each other), each in a namespace of its
own, carry the others: db1 and every web are their leaves (network.relays
lists every relay, no join). The network faults hit every namespace,
relays included; the agent killed, stopped, skewed or given a bad
state_dir is still a db or a web, and FD still kills a web (a leaf: the
relays take it for lost and their verdicts reach the others). With two
relays or more the fault relay-kill kill -9s relay1: no leaf may be lost
anywhere meanwhile (a `choreo watch` on every agent says so), a change of
db1 must reach every web and its level behaviour, and a web killed then
must be lost everywhere within the same bound on the verdicts of the
relays left; then relay1 restarts and the checks above follow.

Needs root, ip (iproute2) and nft (nftables); without them it prints
"SKIP:" lines and exits 77. Output: "ok - ..." / "FAIL: ..." lines, and
with --json a summary per fault (reconvergence in heartbeats).

Faults are injected for real: nftables drops and duplicates packets
(numgen random, dup), partitions drop everything to or from db1, a
transparent proxy (faultproxy.py) redirected to by nftables delays every
TCP stream (this kernel may lack netem), SIGSTOP/SIGKILL hit the agents,
faketime skews their wall clock, a tiny tmpfs fills up or goes read-only
under db1's state_dir.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HEARTBEAT_MS = 200
LOST_AFTER_MS = 1000
TRUTH_BOUND_HB = 15          # I1: views equal the truth within 3 s of healing
POLL_SLACK_MS = 400          # FD: timers and scheduling on a loaded box
STATES = ["ready", "maintenance", "draining", "ready", "maintenance"]
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
SAN_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer",
               "UndefinedBehaviorSanitizer")


def log(msg):
    print(msg, flush=True)


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **kw)


def now_ms():
    return time.monotonic() * 1000.0


class Node:
    def __init__(self, cluster, name, idx, groups):
        self.c = cluster
        self.name = name
        self.idx = idx
        self.groups = groups
        self.ns = f"{cluster.tag}-{name}"
        self.ip = f"10.213.0.{10 + idx}"
        self.dir = os.path.join(cluster.dir, name)
        self.sock = os.path.join(self.dir, "choreo.sock")
        self.state_dir = os.path.join(self.dir, "state")
        self.cfg = os.path.join(self.dir, "choreo.yaml")
        self.logf = os.path.join(self.dir, "agent.log")
        self.proc = None
        self.skew = None          # e.g. "+90s": libfaketime's FAKETIME
        self.lifetimes = 0
        os.makedirs(self.state_dir, exist_ok=True)

    @property
    def addr(self):
        return f"tcp://{self.ip}:7410"

    def nsexec(self, *args, check=True):
        return sh("ip", "netns", "exec", self.ns, *args, check=check)

    def write_config(self, join, relays=None, relay=False):
        """join: addresses to join through; relays (a leaf): the inboxes
        of every relay, in place of join; relay: this agent is one."""
        rec = os.path.join(HERE, "record.sh")
        lines = [
            "node:", f"  name: {self.name}", "  cluster: faults",
            f"  groups: [{', '.join(self.groups)}]",
            "network:", f"  listen: {self.addr}",
        ]
        if relays:
            lines.append(f"  relays: [{', '.join(relays)}]")
        else:
            lines.append(f"  join: [{', '.join(join)}]")
        if relay:
            lines.append("  relay: true")
        lines += [
            f"  key_file: {self.c.key}",
            f"  heartbeat: {HEARTBEAT_MS}ms", f"  lost_after: {LOST_AFTER_MS}ms",
            "control:", f"  socket: {self.sock}", '  mode: "0600"',
            f"state_dir: {self.state_dir}",
        ]
        if self.c.identity:
            lines += self.identity_lines()
        if "web" in self.groups:
            lines += [
                "behaviours:",
                "  - name: holding",
                "    peers: {group: db}",
                "    when: {any: maintenance}",
                f"    run: [{rec}, run]",
                f"    revert: [{rec}, revert]",
                "  - name: changes",
                "    peers: {group: db}",
                "    on: change",
                f"    run: [{rec}, change]",
            ]
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines) + "\n")

    def identity_lines(self):
        key = os.path.join(self.dir, "node.key")
        cert = os.path.join(self.dir, "node.cert")
        if not os.path.exists(key):
            secret_key(self.c.bin, key)
            pub = sh(self.c.bin, "pubkey", key).stdout.strip()
            with open(cert, "w") as f:
                f.write(sh(self.c.bin, "cert", "issue", "--operator-key",
                           self.c.op_key, "--node", self.name, "--groups",
                           ",".join(self.groups), "--public", pub).stdout)
        return ["identity:", f"  key_file: {key}", f"  cert_file: {cert}",
                f"  operators: [{self.c.op_pub}]", "  required: true"]

    def start(self):
        self.lifetimes += 1
        with open(os.path.join(self.c.rec_dir, f"{self.name}.holding"), "a") as f:
            f.write(f"{time.time():.6f} start -\n")
        out = open(self.logf, "a")
        env = dict(os.environ)
        env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
        env["RECORD_DIR"] = self.c.rec_dir  # scripts inherit it
        if self.skew:
            # Preloaded into the agent itself (the faketime command would
            # stand between us and the agent's pid), ahead of a sanitizer
            # build's runtime; the monotonic clock stays real.
            env["LD_PRELOAD"] = FAKETIME_LIB
            env["FAKETIME"] = self.skew
            env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                                   ":verify_asan_link_order=0").lstrip(":")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, self.c.bin, "agent", "-c", self.cfg],
            stdout=out, stderr=subprocess.STDOUT, env=env)
        out.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.status() is not None:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} did not start (see {self.logf})")

    def kill(self, sig=signal.SIGKILL):
        if self.proc is None:
            return
        # ip netns exec execs the agent in place: the pid is the agent's.
        try:
            os.kill(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        if sig in (signal.SIGKILL, signal.SIGTERM):
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cli(self, *args, timeout=3):
        try:
            return subprocess.run([self.c.bin, args[0], "--socket", self.sock,
                                   *args[1:]], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stalls(self):
        """choreo_stalls_total: this agent's own stalls noticed so far."""
        r = self.cli("metrics", timeout=2)
        if r is None or r.returncode != 0:
            return None
        for line in r.stdout.splitlines():
            if line.startswith("choreo_stalls_total "):
                return int(line.split()[1])
        return None

    def counters(self, names):
        """The values of the metrics named (without labels), from
        `choreo metrics`; None when the agent does not answer."""
        r = self.cli("metrics", timeout=2)
        if r is None or r.returncode != 0:
            return None
        got = dict.fromkeys(names, 0)
        for line in r.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in got:
                got[parts[0]] = int(float(parts[1]))
        return got

    def status(self):
        r = self.cli("status", "--json", timeout=2)
        if r is None or r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None


def secret_key(binary, path):
    """A signing key (choreo keygen --signing) written with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(sh(binary, "keygen", "--signing").stdout)


class Cluster:
    def __init__(self, binary, keep, identity=False, relays=0):
        self.bin = os.path.abspath(binary)
        self.keep = keep
        # With relays > 0, relay1..relayN carry the db and webs, which are
        # their leaves (docs/PROTOCOL.md "Relays"); else a full mesh.
        self.relays = relays
        # With identity every node signs its record with a key of its own,
        # certified by one operator key (docs/OPERATIONS.md "Identity").
        self.identity = identity
        self.tag = f"cf{os.getpid() % 100000}"
        self.dir = tempfile.mkdtemp(prefix="choreo-faults.")
        os.chmod(self.dir, 0o755)
        self.rec_dir = os.path.join(self.dir, "records")
        os.makedirs(self.rec_dir)
        self.key = os.path.join(self.dir, "cluster.key")
        with open(self.key, "w") as f:
            f.write(sh(self.bin, "keygen").stdout)
        os.chmod(self.key, 0o600)
        if identity:
            self.op_key = os.path.join(self.dir, "operator.key")
            secret_key(self.bin, self.op_key)
            self.op_pub = sh(self.bin, "pubkey", self.op_key).stdout.strip()
        self.hub = f"{self.tag}-hub"
        self.nodes = {}
        self.proxies = []
        self.mounts = []

    # ---- topology ----
    def build(self, webs):
        sh("ip", "netns", "add", self.hub)
        sh("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.hub, "link", "set", "br0", "up")
        specs = ([("db1", ["db"])] +
                 [(f"web{i}", ["web"]) for i in range(1, webs + 1)] +
                 [(f"relay{i}", ["relay"]) for i in range(1, self.relays + 1)])
        for idx, (name, groups) in enumerate(specs):
            n = Node(self, name, idx, groups)
            self.nodes[name] = n
            sh("ip", "netns", "add", n.ns)
            sh("ip", "-n", self.hub, "link", "add", f"p{idx}", "type", "veth",
               "peer", "name", "eth0", "netns", n.ns)
            sh("ip", "-n", self.hub, "link", "set", f"p{idx}", "master", "br0", "up")
            sh("ip", "-n", n.ns, "addr", "add", f"{n.ip}/24", "dev", "eth0")
            sh("ip", "-n", n.ns, "link", "set", "eth0", "up")
            sh("ip", "-n", n.ns, "link", "set", "lo", "up")
        db = self.nodes["db1"]
        # db1's state_dir is a tmpfs of its own, to be filled up or made
        # read-only by the faults.
        sh("mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs",
           db.state_dir)
        self.mounts.append(db.state_dir)
        if not self.relays:
            for n in self.nodes.values():
                join = [db.addr] if n is not db else [self.nodes["web1"].addr]
                n.write_config(join)
            return
        # Relays join each other (the first joins the second, the others
        # the first); the db and every web list every relay, no join.
        relays = self.relay_nodes()
        addrs = [r.addr for r in relays]
        for r in relays:
            join = [relays[1].addr] if r is relays[0] and len(relays) > 1 \
                else [relays[0].addr] if r is not relays[0] else []
            r.write_config(join, relay=True)
        for n in self.leaves():
            n.write_config([], relays=addrs)

    def relay_nodes(self):
        return [n for n in self.nodes.values() if "relay" in n.groups]

    def leaves(self):
        """The db and the webs: leaves of the relays when there are any."""
        return [n for n in self.nodes.values() if "relay" not in n.groups]

    def teardown(self):
        for n in self.nodes.values():
            n.kill()
        for p in self.proxies:
            p.kill()
        for m in self.mounts:
            sh("umount", "-l", m, check=False)
        for n in self.nodes.values():
            sh("ip", "netns", "del", n.ns, check=False)
        sh("ip", "netns", "del", self.hub, check=False)
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            log(f"# kept: {self.dir}")

    # ---- nftables ----
    def nft(self, node, ruleset):
        p = subprocess.run(["ip", "netns", "exec", node.ns, "nft", "-f", "-"],
                           input=ruleset, text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise RuntimeError(f"nft in {node.ns}: {p.stderr.strip()}")

    def nft_flush(self, node):
        subprocess.run(["ip", "netns", "exec", node.ns, "nft", "flush",
                        "ruleset"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)

    def heal_network(self):
        for p in self.proxies:
            p.kill()
            p.wait()
        self.proxies = []
        for n in self.nodes.values():
            self.nft_flush(n)

    # ---- observation ----
    def live(self):
        return [n for n in self.nodes.values() if n.alive()]

    def views_agree(self):
        """Whether every live agent shows every live node as that node
        shows itself (state), and no live node as lost."""
        own = {}
        views = {}
        for n in self.live():
            s = n.status()
            if s is None:
                return False, f"{n.name} does not answer"
            own[n.name] = s["node"]["state"]
            views[n.name] = {p["name"]: p["state"] for p in s["peers"]}
        for viewer, seen in views.items():
            for name, state in own.items():
                if name == viewer:
                    continue
                if seen.get(name) != state:
                    return False, (f"{viewer} shows {name} "
                                   f"{seen.get(name)!r}, it is {state!r}")
        return True, ""

    def wait_views(self, bound_ms):
        t0 = now_ms()
        why = ""
        while now_ms() - t0 < bound_ms:
            ok, why = self.views_agree()
            if ok:
                return now_ms() - t0, ""
            time.sleep(0.05)
        return None, why


def read_calls(rec_dir, name, behaviour):
    path = os.path.join(rec_dir, f"{name}.{behaviour}")
    try:
        with open(path) as f:
            return [ln.split() for ln in f if ln.strip()]
    except OSError:
        return []


def check_level(rec_dir, name, truth_maint):
    """I2 for one web: (ok, why)."""
    calls = read_calls(rec_dir, name, "holding")
    last = None
    prev = None
    for c in calls:
        what = c[1]
        if what == "start":
            prev = None       # a new lifetime may repeat the last action
            continue
        if prev is not None and what == prev:
            return False, f"{name}: {what} twice in a row in one lifetime"
        prev = what
        last = what
    want = "run" if truth_maint else "revert"
    if last is None and not truth_maint:
        return True, ""
    if last != want:
        return False, (f"{name}: last level action {last!r}, truth wants "
                       f"{want!r}")
    return True, ""


def check_event(rec_dir, name, truth_state):
    calls = read_calls(rec_dir, name, "changes")
    calls = [c for c in calls if c[1] == "change"]
    if not calls:
        return False, f"{name}: no change event recorded"
    if calls[-1][2] != truth_state:
        return False, (f"{name}: last change event saw {calls[-1][2]!r}, "
                       f"db1 is {truth_state!r}")
    return True, ""


def sanitizer_reports(cl):
    bad = []
    for n in cl.nodes.values():
        try:
            text = open(n.logf, errors="replace").read()
        except OSError:
            continue
        if any(m in text for m in SAN_MARKERS):
            bad.append(n.name)
    return bad


RELAY_METRICS = ("choreo_relay_verdict_losses_total",
                 "choreo_relay_resyncs_asked_total",
                 "choreo_relay_catch_ups_alone_total",
                 "choreo_relay_catch_up_windows_total")


def relay_counters(cl):
    """RELAY_METRICS of every live agent: {agent: {metric: value}}."""
    out = {}
    for n in cl.live():
        c = n.counters(RELAY_METRICS)
        if c is not None:
            out[n.name] = c
    return out


def relay_deltas(before, after):
    """What each relay metric grew by, summed over the agents (an agent
    restarted meanwhile counts from zero)."""
    tot = dict.fromkeys(RELAY_METRICS, 0)
    for name, now in after.items():
        was = before.get(name, {})
        for m in RELAY_METRICS:
            d = now[m] - was.get(m, 0)
            tot[m] += d if d >= 0 else now[m]
    return {m.replace("choreo_relay_", "").replace("_total", ""): v
            for m, v in tot.items()}


class LostWatch:
    """`choreo watch --json --snapshot` on each agent given, for the peers
    each sees lost or left meanwhile: a transient loss that polling the
    status would miss is in the stream."""

    def __init__(self, cl, nodes):
        self.files = {}
        self.procs = []
        for n in nodes:
            path = os.path.join(n.dir, f"watch.{int(time.time() * 1000)}")
            out = open(path, "w")
            self.procs.append(subprocess.Popen(
                [cl.bin, "watch", "--socket", n.sock, "--json", "--snapshot"],
                stdout=out, stderr=subprocess.DEVNULL))
            out.close()
            self.files[n.name] = path
        # The snapshot comes once the stream is on: nothing is missed
        # after every agent printed one.
        deadline = time.monotonic() + 5
        while not all(self.events(n, "snapshot") for n in self.files):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("choreo watch printed no snapshot")
            time.sleep(0.02)

    def events(self, name, kind):
        try:
            with open(self.files[name]) as f:
                lines = f.read().splitlines()
        except OSError:
            return []
        evs = []
        for ln in lines:
            try:
                ev = json.loads(ln)
            except ValueError:
                continue  # a line being written
            if ev.get("event") == kind:
                evs.append(ev)
        return evs

    def losses(self, besides):
        """'viewer lost peer' for each lost or left event of a peer not
        in besides."""
        return [f"{name} saw {ev['peer']} {ev['event']}"
                for name in self.files for kind in ("lost", "left")
                for ev in self.events(name, kind) if ev["peer"] not in besides]

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
            p.wait()
        self.procs = []


# ---- the faults ----

def drive(cl, seconds, rng):
    """db1 through random states for `seconds`; returns its last state."""
    db = cl.nodes["db1"]
    end = time.monotonic() + seconds
    last = None
    while time.monotonic() < end:
        st = rng.choice(STATES)
        r = db.cli("set", st, "--reason", "faults", timeout=3) if db.alive() else None
        if r is not None and r.returncode == 0:
            last = st
        time.sleep(rng.uniform(0.05, 0.4))
    return last


def nft_all(cl, ruleset_for):
    for n in cl.nodes.values():
        rs = ruleset_for(n)
        if rs:
            cl.nft(n, rs)


def loss_rules(pct):
    return lambda n: (
        "table inet faults {\n chain in { type filter hook input priority 0;"
        f" iifname \"eth0\" numgen random mod 100 < {pct} drop\n }}\n"
        " chain out { type filter hook output priority 0;"
        f" oifname \"eth0\" numgen random mod 100 < {pct} drop\n }}\n}}\n")


def dup_rules(pct):
    return lambda n: (
        "table netdev faults {\n chain in { type filter hook ingress device "
        f"\"eth0\" priority 0; numgen random mod 100 < {pct} dup to \"eth0\"\n"
        " }\n}\n")


def partition_rules(node, inbound=True, outbound=True):
    rs = "table inet faults {\n"
    if inbound:
        rs += (" chain in { type filter hook input priority 0;"
               " iifname \"eth0\" drop\n }\n")
    if outbound:
        rs += (" chain out { type filter hook output priority 0;"
               " oifname \"eth0\" drop\n }\n")
    return rs + "}\n"


def fault_loss(pct):
    def f(cl, rng):
        nft_all(cl, loss_rules(pct))
        last = drive(cl, 4, rng)
        cl.heal_network()
        return last
    return f


def fault_dup(cl, rng):
    nft_all(cl, dup_rules(10))
    last = drive(cl, 4, rng)
    cl.heal_network()
    return last


def fault_delay(cl, rng):
    """200 ± 100 ms on every TCP stream between agents, through a
    transparent proxy in each namespace (nftables redirects the agents'
    connections to it; the proxy's own are marked and pass)."""
    for n in cl.nodes.values():
        cl.nft(n, "table ip faults {\n chain out { type nat hook output "
                  "priority -100; meta mark 0x2a return;"
                  " ip daddr 10.213.0.0/24 tcp dport 7410 redirect to :7499\n"
                  " }\n}\n")
        p = subprocess.Popen(["ip", "netns", "exec", n.ns, sys.executable,
                              os.path.join(HERE, "faultproxy.py"), "--port",
                              "7499", "--delay-ms", "200", "--jitter-ms", "100",
                              "--mark", "42", "--seed", str(rng.randrange(1 << 30))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cl.proxies.append(p)
    # Existing connections bypass the proxy: drop them so that the agents
    # reconnect through it (nanomsg reconnects by itself).
    for n in cl.nodes.values():
        n.nsexec("ss", "-K", "dport", "=", "7410", check=False)
    last = drive(cl, 5, rng)
    cl.heal_network()
    for n in cl.nodes.values():
        n.nsexec("ss", "-K", "dport", "=", "7410", check=False)
    return last


def fault_partition(cl, rng):
    db = cl.nodes["db1"]
    cl.nft(db, partition_rules(db))
    last = drive(cl, 2.5 * LOST_AFTER_MS / 1000, rng)
    cl.heal_network()
    return last


def fault_asymmetric(cl, rng):
    db = cl.nodes["db1"]
    cl.nft(db, partition_rules(db, inbound=True, outbound=False))
    last = drive(cl, 2.5 * LOST_AFTER_MS / 1000, rng)
    cl.heal_network()
    return last


def fault_sigstop(cl, rng):
    victim = cl.nodes["web2"]
    last = drive(cl, 0.5, rng)
    victim.kill(signal.SIGSTOP)
    last = drive(cl, 3 * LOST_AFTER_MS / 1000, rng) or last
    victim.kill(signal.SIGCONT)
    return last


def seen_by(nodes, peer, state):
    """Every node of nodes shows peer in state."""
    for n in nodes:
        s = n.status()
        if s is None or {p["name"]: p["state"] for p in s["peers"]}.get(peer) != state:
            return False
    return True


def fault_kill_during_script(cl, rng):
    """kill -9 a web while its level script runs (record.sh lasts 300 ms),
    so that the end of that action is never saved; while it is down, db1
    goes back to the opposite level state and every other web sees it;
    then restart it: it must bring `holding` to that changed truth by
    itself (applied.log: the action it was killed in is unsettled), before
    the final change of run_fault."""
    web = cl.nodes["web1"]
    db = cl.nodes["db1"]
    st = db.status()["node"]["state"]
    target = "ready" if st == "maintenance" else "maintenance"
    opposite = "ready" if target == "maintenance" else "maintenance"
    db.cli("set", target)
    time.sleep(0.1)   # the fault: web1's script has started and runs
    web.kill()
    r = db.cli("set", opposite, "--reason", "faults")
    if r is None or r.returncode != 0:
        raise RuntimeError(f"db1 set {opposite} failed while web1 was down")
    others = [n for n in cl.nodes.values()
              if "web" in n.groups and n is not web]
    deadline = time.monotonic() + TRUTH_BOUND_HB * HEARTBEAT_MS / 1000
    while not seen_by(others, "db1", opposite):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the other webs did not see db1 {opposite}")
        time.sleep(0.05)
    web.start()
    deadline = time.monotonic() + 5
    while True:
        ok, why = check_level(cl.rec_dir, web.name, opposite == "maintenance")
        if ok:
            return opposite
        if time.monotonic() > deadline:
            raise RuntimeError("I2: restarted into a changed truth, " + why)
        time.sleep(0.05)


def fault_relay_kill(cl, rng):
    """kill -9 relay1 (of two or more): every other agent sees it lost,
    and no leaf is lost or left anywhere while it is down (a `watch` on
    each agent says so); db1 goes through states for 2.5 × lost_after,
    then a change of db1 reaches everyone and every web's level behaviour
    follows it; a web killed then is lost everywhere within the detector's
    bound on the other relays' verdicts alone; the web, then relay1,
    restart."""
    relay = cl.nodes["relay1"]
    db = cl.nodes["db1"]
    others = [n for n in cl.live() if n is not relay]
    bound = LOST_AFTER_MS + HEARTBEAT_MS + POLL_SLACK_MS
    watch = LostWatch(cl, others)
    try:
        relay.kill()
        t0 = now_ms()
        while not seen_by(others, relay.name, "lost"):
            if now_ms() - t0 > bound + 2000:
                raise RuntimeError(f"relay1 killed, not lost everywhere "
                                   f"{bound + 2000} ms later")
            time.sleep(0.03)
        last = drive(cl, 2.5 * LOST_AFTER_MS / 1000, rng)
        cur = last or db.status()["node"]["state"]
        target = "ready" if cur == "maintenance" else "maintenance"
        r = db.cli("set", target, "--reason", "relay1 down")
        if r is None or r.returncode != 0:
            raise RuntimeError(f"db1 set {target} failed with relay1 down")
        took, why = cl.wait_views(TRUTH_BOUND_HB * HEARTBEAT_MS)
        if took is None:
            raise RuntimeError(f"I1 with relay1 down: views differ "
                               f"{TRUTH_BOUND_HB} heartbeats after db1's "
                               f"change: {why}")
        webs = [n for n in cl.nodes.values() if "web" in n.groups]
        deadline = time.monotonic() + 5
        while True:
            bad = [why for ok, why in (check_level(cl.rec_dir, w.name,
                                                   target == "maintenance")
                                       for w in webs) if not ok]
            if not bad:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("I2 with relay1 down: " + "; ".join(bad))
            time.sleep(0.05)
        lost = watch.losses({relay.name})
        if lost:
            raise RuntimeError("with relay1 down a leaf was lost: " +
                               ", ".join(lost))
    finally:
        watch.stop()
    victim = cl.nodes["web2"]
    fd_ok, fd_ms, late = check_detector(cl, victim)
    victim.start()
    if not fd_ok:
        raise RuntimeError(f"FD with relay1 down: {victim.name} killed; lost "
                           f"everywhere only after {fd_ms:.0f} ms (bound "
                           f"{bound} ms); by agent: {', '.join(late)}")
    log(f"# relay-kill: relay1 down: no leaf lost, db1's change followed; "
        f"killed {victim.name} lost everywhere in {fd_ms:.0f} ms")
    relay.start()
    return target


def fault_db_restarts(cl, rng):
    db = cl.nodes["db1"]
    last = db.status()["node"]["state"]
    for _ in range(10):
        db.kill()
        db.start()
        time.sleep(0.3)
    st = rng.choice(STATES)
    if db.cli("set", st).returncode == 0:
        last = st
    return last


def fault_skew(offset):
    def f(cl, rng):
        web = cl.nodes["web3"]
        web.kill()
        web.skew = offset
        web.start()
        last = drive(cl, 3, rng)
        return last
    return f


def unskew(cl):
    web = cl.nodes["web3"]
    if web.skew:
        web.kill()
        web.skew = None
        web.start()


def state_file(node):
    return os.path.join(node.state_dir, "state.json")


def fault_full(cl, rng):
    """db1's state_dir fills up: sets during it, then a crash and a
    restart while it is still full."""
    db = cl.nodes["db1"]
    filler = os.path.join(db.state_dir, "filler")
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        last = drive(cl, 2, rng)
        db.kill()
        db.start()
        last = drive(cl, 1, rng) or last
    finally:
        os.unlink(filler)
    return last


def fault_readonly(cl, rng):
    """db1's state_dir goes read-only: sets during it, a crash and a
    restart while it still is."""
    db = cl.nodes["db1"]
    sh("mount", "-o", "remount,ro", db.state_dir)
    try:
        last = drive(cl, 2, rng)
        db.kill()
        db.start()
        last = drive(cl, 1, rng) or last
    finally:
        sh("mount", "-o", "remount,rw", db.state_dir)
        # db1 restarted in a mount namespace of its own (ip netns exec),
        # copied while the mount was read-only: that copy stays so until
        # remounted there too, as a host's single namespace would not.
        if db.alive():
            sh("nsenter", "-t", str(db.proc.pid), "-m", "mount", "-o",
               "remount,rw", db.state_dir, check=False)
    return last


def crash_loop(node, times=5):
    for _ in range(times):
        node.kill()
        node.start()


def fault_state_file(kind):
    """After a crash loop, db1's state file is garbage, gone, or holds an
    incarnation ten days ahead; db1 restarts from it."""
    def f(cl, rng):
        db = cl.nodes["db1"]
        crash_loop(db)
        db.kill()
        path = state_file(db)
        if kind == "garbage":
            with open(path, "wb") as out:
                out.write(os.urandom(300))
        elif kind == "deleted":
            os.unlink(path)
        else:
            with open(path) as fin:
                doc = json.load(fin)
            doc["inc"] = int(time.time()) + 10 * 86400
            with open(path, "w") as out:
                json.dump(doc, out)
        db.start()
        return drive(cl, 1, rng)
    return f


FAULTS = {
    "loss-20": fault_loss(20),
    "loss-50": fault_loss(50),
    "duplicate-10": fault_dup,
    "delay-200": fault_delay,
    "partition": fault_partition,
    "asymmetric": fault_asymmetric,
    "sigstop": fault_sigstop,
    "kill-during-script": fault_kill_during_script,
    "db-restarts": fault_db_restarts,
    "skew-plus-90s": fault_skew("+90s"),
    "skew-minus-90s": fault_skew("-90s"),
    "skew-plus-1h": fault_skew("+1h"),
    "state-dir-full": fault_full,
    "state-dir-readonly": fault_readonly,
    "state-file-garbage": fault_state_file("garbage"),
    "state-file-deleted": fault_state_file("deleted"),
    "state-file-future": fault_state_file("future"),
    "relay-kill": fault_relay_kill,    # with --relays 2 or more only
}
RELAY_FAULTS = ("relay-kill",)


def send_queues_empty(node):
    """Whether none of node's TCP connections holds unacknowledged data."""
    out = node.nsexec("ss", "-tnH", "state", "established", check=False).stdout
    return all(line.split()[1] == "0" for line in out.splitlines()
               if len(line.split()) > 1)


def skew_ms(skew):
    """The offset of a FAKETIME like "+90s" or "-1h" in milliseconds (0
    for no skew); None if it is not of that form."""
    if not skew:
        return 0
    units = {"s": 1000, "m": 60000, "h": 3600000, "d": 86400000}
    try:
        return int(float(skew[:-1]) * units[skew[-1]])
    except (KeyError, ValueError):
        return None


def check_detector(cl, victim):
    """FD: kill victim; every other live agent sees it lost in time.

    The victim is killed once its connections hold no unacknowledged data
    (up to 3 s after the fault healed): the kernel keeps retransmitting
    what a killed process had sent, and after heavy loss its backed-off
    timer can deliver the last heartbeats up to a second late, which
    keeps the node alive that much longer (docs/RELIABILITY.md). The
    bound is the detector's, from the last message delivered.

    Each agent's time is that of its own `lost` event (`choreo watch`,
    stamped by the agent when its view changed) after the kill: polling
    one CLI per agent takes from 10 ms to most of a second on a loaded
    machine, so a round of polls would add seconds that are not the
    detector's. An agent whose wall clock is skewed on purpose (faketime,
    a fixed offset) has its events' times taken back by that offset. The
    poll's time stands where no event was read."""
    deadline = now_ms() + 3000
    while not send_queues_empty(victim) and now_ms() < deadline:
        time.sleep(0.02)
    try:
        watch = LostWatch(cl, [n for n in cl.live() if n is not victim])
    except RuntimeError as e:
        log(f"# FD: {e}; the status polls alone time the agents")
        watch = None
    stalls = {n.name: n.stalls() for n in cl.live() if n is not victim}
    t0 = now_ms()
    t0_wall = time.time() * 1000
    victim.kill()
    bound = LOST_AFTER_MS + HEARTBEAT_MS + POLL_SLACK_MS
    pending = {n.name for n in cl.live()}
    when = {}

    def event_ms(k):
        skew = skew_ms(cl.nodes[k].skew)
        if watch is None or skew is None:
            return None
        evs = [e["time"] - skew - t0_wall for e in watch.events(k, "lost")
               if e["peer"] == victim.name and e["time"] - skew >= t0_wall]
        return evs[0] if evs else None

    while pending and now_ms() - t0 < bound + 2000:
        for n in list(cl.live()):
            if n.name not in pending:
                continue
            ev = event_ms(n.name)
            if ev is not None:
                pending.discard(n.name)
                when[n.name] = ev
                continue
            # No event (yet): the status says whether the victim is lost,
            # also when it was before the kill (no event comes then).
            s = n.status()
            if s is None:
                continue
            seen = {p["name"]: p["state"] for p in s["peers"]}
            if seen.get(victim.name) == "lost":
                pending.discard(n.name)
                when[n.name] = now_ms() - t0
        time.sleep(0.03)
    took = now_ms() - t0
    polled = set()
    for k in when:
        ev = event_ms(k)
        if ev is not None:
            when[k] = min(when[k], ev)
        else:
            polled.add(k)
    if watch is not None:
        watch.stop()
    # An agent whose own loop stalled meanwhile (a starved CPU) gives its
    # peers a fresh lost_after when it resumes, by design
    # (docs/RELIABILITY.md "Stalls", tests/scenario/stall.sh): it is held
    # to seeing the victim lost, not to the bound.
    stalled = {k for k in when if stalls.get(k) is not None and
               (cl.nodes[k].stalls() or 0) > stalls[k]}
    in_time = all(v <= bound or k in stalled for k, v in when.items())
    late = sorted(pending) or [
        f"{k} {v:.0f} ms" + (" (stalled)" if k in stalled else "") +
        (" (polled)" if k in polled else "")
        for k, v in sorted(when.items(), key=lambda kv: -kv[1])]
    return (not pending and in_time), max(when.values(), default=took), late


def run_fault(cl, name, rng, results):
    fn = FAULTS[name]
    db = cl.nodes["db1"]
    failures = []
    counters0 = relay_counters(cl) if cl.relays else None
    try:
        last = fn(cl, rng)
    except RuntimeError as e:
        # An agent that could not start during the fault is a failure of
        # this fault; heal and bring everyone back for the next one.
        failures.append(f"during the fault: {e}")
        last = None
        cl.heal_network()
        for n in cl.nodes.values():
            if not n.alive():
                try:
                    n.start()
                except RuntimeError as e2:
                    failures.append(f"after the fault: {e2}")
    # The final state: different from the current one, so that the event
    # behaviour has something to report after the fault.
    cur = last or (db.status() or {"node": {"state": "ready"}})["node"]["state"]
    final = "maintenance" if cur != "maintenance" else "ready"
    healed = now_ms()
    r = db.cli("set", final, "--reason", "final") if db.alive() else None
    if r is None or r.returncode != 0:
        failures.append(f"db1 set {final} failed: "
                        f"{r.stderr.strip() if r else 'timeout'}")
    took, why = cl.wait_views(TRUTH_BOUND_HB * HEARTBEAT_MS)
    if took is None:
        failures.append(f"I1: views differ {TRUTH_BOUND_HB} heartbeats after "
                        f"healing: {why}")
    # Let the scripts of the last change run before reading their records.
    deadline = time.monotonic() + 5
    truth_maint = final == "maintenance"
    webs = [n for n in cl.nodes.values() if "web" in n.groups]
    while time.monotonic() < deadline:
        if all(check_level(cl.rec_dir, w.name, truth_maint)[0] and
               check_event(cl.rec_dir, w.name, final)[0] for w in webs):
            break
        time.sleep(0.05)
    for w in webs:
        ok, why = check_level(cl.rec_dir, w.name, truth_maint)
        if not ok:
            failures.append("I2: " + why)
        ok, why = check_event(cl.rec_dir, w.name, final)
        if not ok:
            failures.append("I2: " + why)
    dead = [n.name for n in cl.nodes.values() if not n.alive()]
    if dead:
        failures.append(f"I3: agents not running: {', '.join(dead)}")
    san = sanitizer_reports(cl)
    if san:
        failures.append(f"I3: sanitizer report in the log of {', '.join(san)}")
    relay_grew = (relay_deltas(counters0, relay_counters(cl))
                  if cl.relays else None)
    victim = cl.nodes["web4"] if "web4" in cl.nodes else cl.nodes["web2"]
    fd_ok, fd_ms, late = check_detector(cl, victim)
    if not fd_ok:
        failures.append(f"FD: {victim.name} killed; lost everywhere only "
                        f"after {fd_ms:.0f} ms (bound "
                        f"{LOST_AFTER_MS + HEARTBEAT_MS + POLL_SLACK_MS} ms); "
                        f"by agent: {', '.join(late)}")
    victim.start()
    cl.wait_views(TRUTH_BOUND_HB * HEARTBEAT_MS)
    if name.startswith("skew"):
        unskew(cl)
        cl.wait_views(TRUTH_BOUND_HB * HEARTBEAT_MS)
    hb = None if took is None else took / HEARTBEAT_MS
    res = {"fault": name, "ok": not failures,
           "reconverge_ms": took, "reconverge_heartbeats": hb,
           "lost_detected_ms": fd_ms, "lost_by_agent": late,
           "failures": failures}
    if cl.relays:
        res["relay_metrics_grew"] = relay_grew
    results.append(res)
    if failures:
        for f in failures:
            log(f"FAIL: {name}: {f}")
        if relay_grew:
            log(f"# {name}: during the fault, summed over the agents: " +
                ", ".join(f"{k} +{v}" for k, v in relay_grew.items()))
    else:
        log(f"ok - {name}: views true {took:.0f} ms after healing "
            f"({hb:.1f} heartbeats); level and event behaviours match; "
            f"killed {victim.name} lost everywhere in {fd_ms:.0f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--choreo", default=os.environ.get("CHOREO_BIN"),
                    help="the choreo binary (default: $CHOREO_BIN)")
    ap.add_argument("--faults", default=None,
                    help="comma-separated faults (default: all; "
                    f"{', '.join(RELAY_FAULTS)} with --relays 2 or more "
                    "only): " + ", ".join(FAULTS))
    ap.add_argument("--webs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--runs", type=int, default=1,
                    help="run the list this many times (median in --json)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--identity", action="store_true",
                    help="every agent signs its record (identity required)")
    ap.add_argument("--relays", type=int, default=0,
                    help="this many relays (relay1...), the db and webs "
                    "their leaves; 0: a full mesh (default)")
    a = ap.parse_args()
    if not a.choreo:
        ap.error("--choreo or $CHOREO_BIN is needed")
    if not 0 <= a.relays <= 16:
        ap.error("--relays: 0 to 16 (a leaf lists at most 16 relays)")
    if a.faults is None:
        a.faults = ",".join(f for f in FAULTS
                            if a.relays >= 2 or f not in RELAY_FAULTS)
    names = [f for f in a.faults.split(",") if f]
    for f in names:
        if f not in FAULTS:
            ap.error(f"unknown fault {f!r}")
        if f in RELAY_FAULTS and a.relays < 2:
            ap.error(f"fault {f!r} needs --relays 2 or more")
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"):
        log("SKIP: fault suite: needs root, ip and nft")
        sys.exit(77)
    if any(f.startswith("skew") for f in names) and not os.path.exists(FAKETIME_LIB):
        log("SKIP: fault suite: the skew faults need libfaketime")
        sys.exit(77)
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    log(f"# seed {seed}")
    rng = random.Random(seed)
    results = []
    cl = Cluster(a.choreo, a.keep, a.identity, a.relays)
    try:
        cl.build(a.webs)
        for n in cl.nodes.values():
            n.start()
        took, why = cl.wait_views(20000)
        if took is None:
            log(f"FAIL: the cluster did not form: {why}")
            sys.exit(1)
        log(f"ok - {len(cl.nodes)} agents in network namespaces formed a "
            f"cluster in {took:.0f} ms"
            + (f" ({a.relays} relays, the others their leaves)"
               if a.relays else "")
            + (" (identity required)" if a.identity else ""))
        for _ in range(a.runs):
            for name in names:
                run_fault(cl, name, rng, results)
    finally:
        cl.teardown()
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"seed": seed, "results": results}, f, indent=1)
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
