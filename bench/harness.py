"""Shared by the benchmarks: the options they all take, start choreo agents
on loopback in a temporary directory, talk to them over their control
sockets, and summarise figures.
"""
import argparse
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import time


_used_ports = set()


def arguments(doc, agents, serf=True, keep=True):
    """The command line every benchmark script starts from; the script adds
    its own options to the parser returned, then calls parse().

    --choreo (the binary), --agents (default: agents), --heartbeat,
    --relays, --json (one JSON document on stdout instead of text), and
    --keep (the agents' directories are kept) when keep; with serf, also
    --tool (choreo or serf), --serf (its binary) and --profile (Serf's
    timing profile), for the scripts that run the same measure on Serf.
    doc is the script's __doc__, its --help description."""
    ap = argparse.ArgumentParser(
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    if serf:
        ap.add_argument("--tool", choices=["choreo", "serf"],
                        default="choreo")
    ap.add_argument("--choreo", default="build/choreo",
                    help="the choreo binary (default: %(default)s)")
    if serf:
        ap.add_argument("--serf", default="serf",
                        help="the serf binary, with --tool serf")
        ap.add_argument("--profile", choices=["lan", "local", "wan"],
                        default="lan", help="Serf's timing profile")
    ap.add_argument("--agents", type=int, default=agents,
                    help="agents in the cluster (default: %(default)s)")
    ap.add_argument("--heartbeat", default="1s",
                    help="choreo's network.heartbeat (default: "
                         "%(default)s)")
    ap.add_argument("--relays", type=int, default=0,
                    help="choreo: the first R agents are relays (the seed "
                         "among them) and the others their leaves; 0: a "
                         "full mesh")
    ap.add_argument("--relay-nice", type=int, default=0,
                    help="choreo, with --relays: run the relays at this "
                         "niceness (negative: a higher priority, which "
                         "needs CAP_SYS_NICE), so that on one machine the "
                         "relays, which hear every member, are not starved "
                         "by hundreds of leaves sharing its cores (in a "
                         "real cluster each relay has a machine of its "
                         "own); 0: every agent alike")
    ap.add_argument("--leaf-nice", type=int, default=0,
                    help="choreo, with --relays: run the leaves at this "
                         "niceness (1-19) once started; beware: 500 niced "
                         "leaves can stall in the kernel behind one that "
                         "holds the lock of the directory they share "
                         "(docs/BENCHMARKS.md, \"Quiet relays: 500 "
                         "agents\"); 0: every agent alike")
    if keep:
        ap.add_argument("--keep", action="store_true",
                        help="keep the agents' directories (logs)")
    ap.add_argument("--json", action="store_true",
                    help="print the results as one JSON document")
    return ap


def parse(ap):
    """Parse the command line of a parser from arguments(), and raise this
    process's descriptor limit for the agents it will talk to."""
    args = ap.parse_args()
    raise_nofile()
    return args


def free_port():
    """A free TCP port below the kernel's ephemeral range, so that no
    agent's outgoing connection can take it before the agent binds it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except OSError:
        low = 32768
    for _ in range(1000):
        port = random.randrange(10000, max(10001, low))
        if port in _used_ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _used_ports.add(port)
        return port
    raise SystemExit("no free port below the ephemeral range")


def raise_nofile():
    """Raise this process's soft RLIMIT_NOFILE to the hard limit, as the
    agent does for itself; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def proc_kib(path, field):
    """The value in KiB of "field:" in a /proc file (None if gone)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_kib(pid):
    """VmRSS of a process in KiB, from /proc/PID/status (None if gone)."""
    return proc_kib(f"/proc/{pid}/status", "VmRSS")


def pss_kib(pid):
    """Pss of a process in KiB, from /proc/PID/smaps_rollup: its private
    pages plus its share of the pages it shares (the libraries, among N
    agents: a 1/N share each), what it costs the machine (None if gone)."""
    return proc_kib(f"/proc/{pid}/smaps_rollup", "Pss")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds, from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def machine():
    """nproc, CPU model, kernel and load: what every report starts with."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model,
            "kernel": os.uname().release,
            "load": os.getloadavg()}


def relay_roles(names, nrelays, addr):
    """The first nrelays of names are relays, each joining the others
    (docs/OPERATIONS.md "Relays"); the rest are leaves of them all. Returns, per name,
    the keyword arguments of Cluster.config that say so (join included);
    with nrelays 0, a full mesh joining through names[0]."""
    seed = addr(names[0])
    relays = [addr(n) for n in names[:nrelays]]
    roles = {}
    for i, n in enumerate(names):
        if nrelays == 0:
            roles[n] = {"join": [] if i == 0 else [seed]}
        elif i < nrelays:
            roles[n] = {"join": [r for r in relays if r != addr(n)],
                        "relay": True}
        else:
            roles[n] = {"join": [], "relays": relays}
    return roles


def configure_agents(c, count, nrelays, heartbeat, lost_after="30s"):
    """Write the configurations of agents n0..n{count-1} of cluster c, in
    group web, each on a loopback address of its own, the first nrelays
    relays and the rest their leaves (relay_roles). Returns the names."""
    names = [f"n{i}" for i in range(count)]
    ports = {n: free_port() for n in names}
    index = {n: i for i, n in enumerate(names)}
    roles = relay_roles(
        names, nrelays, lambda n: f"tcp://{loopback(index[n])}:{ports[n]}")
    for i, n in enumerate(names):
        c.config(n, ports[n], "web", heartbeat=heartbeat,
                 lost_after=lost_after, host=loopback(i), **roles[n])
    return names


def summary(values):
    """p50 and p90 of a list of numbers."""
    return {"p50": statistics.median(values), "p90": percentile(values, 90),
            "n": len(values)}


def loopback(i):
    """A loopback address of its own for agent i (127.1.0.1, 127.1.0.2…):
    Linux routes all of 127/8 to lo. Agents that listen on distinct
    loopback addresses also connect from them, so each draws its outgoing
    connections' ports from a port space of its own (see
    docs/BENCHMARKS.md, "200 agents")."""
    return f"127.1.{i // 250}.{i % 250 + 1}"


def percentile(values, p):
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def wait_until(pred, timeout, what, step=0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(step)
    raise SystemExit(f"timed out waiting for {what}")


def request(sock_path, req, timeout=5.0):
    """One control-socket request; returns the reply object or None."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(sock_path)
            s.sendall(json.dumps(req).encode() + b"\n")
            line = s.makefile().readline()
        return json.loads(line)
    except (OSError, ValueError):
        return None


def metric(sock_path, name):
    """The value of an unlabelled metric of the agent at sock_path (the
    control socket's "metrics" request), or None."""
    reply = request(sock_path, {"cmd": "metrics"}) or {}
    for line in reply.get("text", "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            return float(parts[1])
    return None


class Identity:
    """Node identity for a benchmark cluster (docs/SECURITY.md): an
    operator's signing key, and for each agent its own signing key and a
    certificate the operator issued, all made with the choreo CLI as an
    operator would (choreo keygen --signing, pubkey, cert issue), in
    directory d. section() is the `identity:` part of an agent's
    configuration."""

    def __init__(self, choreo, d):
        self.choreo = os.path.abspath(choreo)
        self.d = d
        self.op_key = self._key("operator")
        self.op_public = self._cli("pubkey", self.op_key)

    def _cli(self, *argv):
        r = subprocess.run([self.choreo, *argv], capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise SystemExit(f"choreo {' '.join(argv)}: exit "
                             f"{r.returncode}: {r.stderr.strip()}")
        return r.stdout.strip()

    def _key(self, name):
        """A new signing key in d/NAME.sk, mode 0600 (the agent refuses a
        key others can read)."""
        path = f"{self.d}/{name}.sk"
        text = self._cli("keygen", "--signing")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        return path

    def section(self, name, groups, required=True):
        """A key and a certificate for node name in groups (a
        comma-separated list), and the configuration that uses them."""
        key = self._key(name)
        cert = f"{self.d}/{name}.cert"
        text = self._cli("cert", "issue", "--operator-key", self.op_key,
                         "--node", name, "--groups", groups,
                         "--public", self._cli("pubkey", key))
        with open(cert, "w") as f:
            f.write(text + "\n")
        return f"""identity:
  key_file: {key}
  cert_file: {cert}
  operators: [{self.op_public}]
  required: {"true" if required else "false"}
"""


class Cluster:
    """Agents named NAME in directory d; config text is up to the caller."""

    def __init__(self, choreo, keep=False, relay_nice=0, leaf_nice=0):
        """relay_nice, leaf_nice: the niceness the agents configured as
        relays, and as leaves, run at; 0: the same as this process."""
        self.choreo = os.path.abspath(choreo)
        self.d = tempfile.mkdtemp(prefix="choreo-bench-")
        self.procs = {}
        self.keep = keep
        self.relay_nice = relay_nice
        self.leaf_nice = leaf_nice
        self.nice = {}

    def sock(self, name):
        return f"{self.d}/{name}.sock"

    def config(self, name, port, groups, join, heartbeat="1s",
               lost_after="10s", extra="", host="127.0.0.1", relay=False,
               relays=()):
        """relay: this agent is a relay; relays: addresses of the relays
        this agent is a leaf of (join is then unused)."""
        net = ""
        if relay:
            net += "  relay: true\n"
            self.nice[name] = self.relay_nice
        if relays:
            net += f"  relays: [{', '.join(relays)}]\n"
            join = []
            self.nice[name] = self.leaf_nice
        text = f"""node:
  name: {name}
  cluster: bench
  groups: [{groups}]
network:
  listen: tcp://{host}:{port}
  join: [{', '.join(join)}]
  heartbeat: {heartbeat}
  lost_after: {lost_after}
{net}control:
  socket: {self.sock(name)}
state_dir: {self.d}/{name}.state
{extra}"""
        path = f"{self.d}/{name}.yaml"
        with open(path, "w") as f:
            f.write(text)
        return path

    def start(self, name):
        with open(f"{self.d}/{name}.log", "a") as log:
            self.procs[name] = subprocess.Popen(
                [self.choreo, "agent", "-c", f"{self.d}/{name}.yaml"],
                stderr=log)
        # Reniced from here once it runs (a preexec_fn would make every
        # launch fork the whole interpreter).
        if self.nice.get(name, 0):
            try:
                os.setpriority(os.PRIO_PROCESS, self.procs[name].pid,
                               self.nice[name])
            except OSError as e:
                raise SystemExit(f"renicing {name} to {self.nice[name]}: "
                                 f"{e.strerror}")

    def status(self, name):
        return request(self.sock(name), {"cmd": "status"})

    def log(self, name):
        with open(f"{self.d}/{name}.log") as f:
            return f.read()

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if not self.keep:
            shutil.rmtree(self.d, ignore_errors=True)
