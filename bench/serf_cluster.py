"""Serf on loopback, for the benchmarks that compare choreo with it: start
agents with distinct bind and RPC ports in a temporary directory, and ask
them for their members over Serf's RPC protocol (what `serf members` does,
without paying for the CLI's start-up at every poll).

The serf binary comes from Debian's `serf` package, extracted without
installing it (installing would start a system service):

    apt-get download serf && dpkg -x serf_*.deb DIR    # DIR/usr/bin/serf

`obtain()` does that in a temporary directory when no binary is given.
"""
import glob
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

from harness import free_port, loopback, wait_until


# ---- the binary ----

CACHE = os.environ.get("SERF_DIR", "/tmp/choreo-bench-serf")


def obtain(explicit=None, workdir=CACHE, download=True, timeout=120):
    """Path of a serf binary. In order: `explicit`; one already extracted
    in workdir; `serf` on PATH; Debian's package from the apt cache or,
    if download, from `apt-get download serf`, extracted with `dpkg -x`
    into workdir. Returns (path, None) or (None, why)."""
    if explicit:
        if os.access(explicit, os.X_OK):
            return explicit, None
        return None, f"{explicit} is not executable"
    path = f"{workdir}/root/usr/bin/serf"
    if os.access(path, os.X_OK):
        return path, None
    on_path = shutil.which("serf")
    if on_path:
        return on_path, None
    os.makedirs(workdir, exist_ok=True)
    debs = glob.glob(f"{workdir}/serf_*.deb") or \
        glob.glob("/var/cache/apt/archives/serf_*.deb")
    if not debs and download:
        try:
            r = subprocess.run(["apt-get", "download", "serf"], cwd=workdir,
                               capture_output=True, text=True,
                               timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, f"apt-get download serf: {e}"
        debs = glob.glob(f"{workdir}/serf_*.deb")
        if r.returncode != 0 or not debs:
            last = (r.stderr.strip().splitlines() or ["failed"])[-1]
            return None, f"apt-get download serf: {last}"
    if not debs:
        return None, "no serf binary, and no serf package in the apt cache"
    r = subprocess.run(["dpkg", "-x", debs[0], f"{workdir}/root"],
                       capture_output=True, text=True)
    if r.returncode != 0 or not os.access(path, os.X_OK):
        return None, f"dpkg -x {debs[0]}: {r.stderr.strip()}"
    return path, None


def version(serf):
    r = subprocess.run([serf, "version"], capture_output=True, text=True)
    return r.stdout.splitlines()[0] if r.returncode == 0 else "?"


# ---- a minimal msgpack codec (the subset Serf's RPC uses) ----

def _pack(o, out):
    if o is None:
        out.append(0xc0)
    elif o is True or o is False:
        out.append(0xc3 if o else 0xc2)
    elif isinstance(o, int):
        if 0 <= o < 128:
            out.append(o)
        elif 0 <= o < 1 << 32:
            out += b"\xce" + struct.pack(">I", o)
        elif o >= 0:
            out += b"\xcf" + struct.pack(">Q", o)
        else:
            out += b"\xd3" + struct.pack(">q", o)
    elif isinstance(o, (str, bytes)):
        b = o.encode() if isinstance(o, str) else o
        # raw types of the old msgpack spec, which Serf's codec reads
        if len(b) < 32:
            out.append(0xa0 | len(b))
        elif len(b) < 1 << 16:
            out += b"\xda" + struct.pack(">H", len(b))
        else:
            out += b"\xdb" + struct.pack(">I", len(b))
        out += b
    elif isinstance(o, (list, tuple)):
        if len(o) < 16:
            out.append(0x90 | len(o))
        else:
            out += b"\xdc" + struct.pack(">H", len(o))
        for x in o:
            _pack(x, out)
    elif isinstance(o, dict):
        if len(o) < 16:
            out.append(0x80 | len(o))
        else:
            out += b"\xde" + struct.pack(">H", len(o))
        for k, v in o.items():
            _pack(k, out)
            _pack(v, out)
    else:
        raise TypeError(type(o))


def pack(o):
    out = bytearray()
    _pack(o, out)
    return bytes(out)


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def take(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("serf closed the RPC connection")
            self.buf += chunk
        b, self.buf = self.buf[:n], self.buf[n:]
        return b

    def raw(self, n):
        b = self.take(n)
        try:
            return b.decode()
        except UnicodeDecodeError:
            return b

    def unpack(self):
        t = self.take(1)[0]
        if t < 0x80:
            return t
        if t >= 0xe0:
            return t - 0x100
        if 0x80 <= t <= 0x8f:
            return self._map(t & 0x0f)
        if 0x90 <= t <= 0x9f:
            return [self.unpack() for _ in range(t & 0x0f)]
        if 0xa0 <= t <= 0xbf:
            return self.raw(t & 0x1f)
        fixed = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q",
                 0xd0: ">b", 0xd1: ">h", 0xd2: ">i", 0xd3: ">q",
                 0xca: ">f", 0xcb: ">d"}
        if t in fixed:
            f = fixed[t]
            return struct.unpack(f, self.take(struct.calcsize(f)))[0]
        if t == 0xc0:
            return None
        if t in (0xc2, 0xc3):
            return t == 0xc3
        if t in (0xd9, 0xc4):
            return self.raw(self.take(1)[0])
        if t in (0xda, 0xc5):
            return self.raw(struct.unpack(">H", self.take(2))[0])
        if t in (0xdb, 0xc6):
            return self.raw(struct.unpack(">I", self.take(4))[0])
        if t == 0xdc:
            return [self.unpack()
                    for _ in range(struct.unpack(">H", self.take(2))[0])]
        if t == 0xdd:
            return [self.unpack()
                    for _ in range(struct.unpack(">I", self.take(4))[0])]
        if t == 0xde:
            return self._map(struct.unpack(">H", self.take(2))[0])
        if t == 0xdf:
            return self._map(struct.unpack(">I", self.take(4))[0])
        raise ValueError(f"msgpack type 0x{t:02x} not handled")

    def _map(self, n):
        d = {}
        for _ in range(n):
            k = self.unpack()
            d[k] = self.unpack()
        return d


class Rpc:
    """One RPC connection to a serf agent (handshake done)."""

    def __init__(self, addr, timeout=5.0):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout)
        self.r = _Reader(self.sock)
        self.seq = 0
        self.call("handshake", {"Version": 1})

    def call(self, command, body=None):
        self.seq += 1
        msg = pack({"Command": command, "Seq": self.seq})
        if body is not None:
            msg += pack(body)
        self.sock.sendall(msg)
        head = self.r.unpack()
        if head.get("Error"):
            raise RuntimeError(f"serf {command}: {head['Error']}")
        return head

    def members(self):
        self.call("members")
        return self.r.unpack()["Members"]

    def close(self):
        self.sock.close()


# ---- a cluster of agents ----

class SerfCluster:
    def __init__(self, serf, profile="lan", keep=False):
        self.serf = os.path.abspath(serf)
        self.profile = profile
        self.d = tempfile.mkdtemp(prefix="serf-bench-")
        self.procs, self.bind, self.rpc, self.host = {}, {}, {}, {}
        self.rpcs = {}
        self.keep = keep

    def add(self, name, tags=None, join=None, handlers=()):
        """Start agent `name`, on a loopback address of its own as the
        choreo agents are; join: a node name already started."""
        self.host[name] = loopback(len(self.host))
        self.bind[name] = free_port()
        self.rpc[name] = free_port()
        argv = [self.serf, "agent", f"-node={name}",
                f"-bind={self.host[name]}:{self.bind[name]}",
                f"-rpc-addr=127.0.0.1:{self.rpc[name]}",
                f"-profile={self.profile}", "-log-level=warn"]
        for k, v in (tags or {}).items():
            argv.append(f"-tag={k}={v}")
        if join is not None:
            argv.append(f"-join={self.host[join]}:{self.bind[join]}")
        for h in handlers:
            argv.append(f"-event-handler={h}")
        with open(f"{self.d}/{name}.log", "w") as log:
            self.procs[name] = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT)

    def rpc_addr(self, name):
        return f"127.0.0.1:{self.rpc[name]}"

    def conn(self, name):
        """A cached RPC connection, or None while the agent isn't up."""
        c = self.rpcs.get(name)
        if c is not None:
            return c
        try:
            c = Rpc(self.rpc_addr(name))
        except (OSError, EOFError, RuntimeError):
            return None
        self.rpcs[name] = c
        return c

    def members(self, name):
        c = self.conn(name)
        if c is None:
            return None
        try:
            return c.members()
        except (OSError, EOFError, RuntimeError, ValueError):
            self.rpcs.pop(name, None)
            c.close()
            return None

    def wait_up(self, name, timeout=30):
        wait_until(lambda: self.conn(name) is not None, timeout,
                   f"serf agent {name}", 0.01)

    def log(self, name):
        with open(f"{self.d}/{name}.log") as f:
            return f.read()

    def stop(self):
        for c in self.rpcs.values():
            c.close()
        self.rpcs = {}
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not self.keep:
            shutil.rmtree(self.d, ignore_errors=True)


def alive_view(members):
    """{name: tags} of the alive members in a `members` answer."""
    return {m["Name"]: m.get("Tags") or {}
            for m in members if m.get("Status") == "alive"}


def now_ms():
    return time.monotonic() * 1000
