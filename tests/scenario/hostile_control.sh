#!/usr/bin/env bash
# A local client that floods the control socket with requests and never
# reads a reply (docs/SECURITY.md "The control socket"). Before the cap it
# took an agent from 3 MB to 748 MB in 10 s. Now its requests stop being
# read once its replies back up, it is dropped (and counted) when they
# stay unread, the victim's memory stays bounded, and another client is
# answered quickly throughout.
source "$(dirname "$0")/lib.sh"

p1=$(free_port)
write_config n1 "$p1" "[db]" "[]"
start_agent n1
pid=${AGENT_PID[n1]}

/usr/bin/python3 - "$T/n1.sock" "$pid" <<'PY' || fail "control flood (see above)"
import json, os, socket, sys, threading, time

path, pid = sys.argv[1], int(sys.argv[2])
DURATION = 10
RSS_MAX_KIB = 64 * 1024
failed = False
stop = threading.Event()

def check(cond, what):
    global failed
    print(("ok - " if cond else "FAIL: ") + what)
    failed = failed or not cond

def rss_kib():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def cpu_s():
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

# The attacker: status requests as fast as the socket takes them, never a
# read; when the agent drops it, it connects again.
sent = [0, 0]  # bytes, connections
def flood():
    line = b'{"cmd":"status"}\n' * 256
    while not stop.is_set():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.settimeout(0.2)
        sent[1] += 1
        try:
            while not stop.is_set():
                try:
                    sent[0] += s.send(line)
                except socket.timeout:
                    pass
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.close()
attacker = threading.Thread(target=flood, daemon=True)

def ask_status():
    t0 = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
        s.sendall(b'{"cmd":"status"}\n')
        buf = b""
        while b"\n" not in buf:
            d = s.recv(65536)
            if not d:
                return None
            buf += d
        return time.monotonic() - t0 if json.loads(buf.split(b"\n")[0])["ok"] else None
    except (OSError, ValueError):
        return None
    finally:
        s.close()

rss0, cpu0 = rss_kib(), cpu_s()
attacker.start()
t_end = time.monotonic() + DURATION
worst, peak, asked, unanswered = 0.0, rss0, 0, 0
while time.monotonic() < t_end:
    took = ask_status()
    asked += 1
    if took is None:
        unanswered += 1
    else:
        worst = max(worst, took)
    peak = max(peak, rss_kib())
    time.sleep(0.1)
stop.set()
attacker.join(5)
cpu = cpu_s() - cpu0
print("# victim: RSS %d KiB before, peak %d KiB during the flood; CPU %.2f s "
      "in %d s; attacker sent %d bytes on %d connections; status asked %d "
      "times, slowest answer %.3f s" % (rss0, peak, cpu, DURATION, sent[0],
                                        sent[1], asked, worst))
check(peak < RSS_MAX_KIB, "victim RSS stayed under 64 MiB (peak %d KiB)" % peak)
check(unanswered == 0 and worst < 2.0,
      "another client's status answered within 2 s throughout (slowest %.3f s)" % worst)
sys.exit(1 if failed else 0)
PY

dropped=$(metric n1 'choreo_control_clients_dropped_total{reason="slow"}')
echo "# choreo_control_clients_dropped_total{reason=\"slow\"} = ${dropped:-absent}"
[ -n "$dropped" ] && [ "$dropped" -ge 1 ] ||
  fail "the slow client was not dropped and counted"
ok "the client that never read was dropped and counted as slow ($dropped)"
c n1 status --json >/dev/null || fail "the agent no longer answers"
ok "the agent answers after the flood"
