#!/usr/bin/env bash
# Descriptor exhaustion without the key (docs/SECURITY.md "Descriptor
# floods"): 1,500 TCP connections to the inbox, each sending nanomsg's
# 8-byte SP header and then nothing, against an agent whose descriptor
# limit is 1,024 (soft and hard). Such connections used to take every
# descriptor: the agent spun in nanomsg's accept loop, scripts could not
# start and were never retried, and a client touching the control socket
# froze the loop in libuv's accept, so heartbeats stopped and peers saw
# the node lost. Two floods, each measured (peak RSS and CPU of the
# victim, slowest status, longest heartbeat gap seen by the peer):
#  1. 1,500 connections opened once and left idle: the victim closes the
#     idle ones and keeps its member's connection, so it goes on hearing
#     its peer;
#  2. the same, reconnecting whatever the victim closes, as fast as it
#     can: the victim resets its inbox and pauses listening.
# Throughout both, `choreo status` answers within 2 s and the peer never
# sees the victim lost; a level behaviour triggered in the middle of the
# second runs during it or within 5 s after.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/behaviours_lib.sh"
export HEARTBEAT=200ms LOST_AFTER=3s
IDLE_S=8 ATTACK_S=15

declare -A P
for n in n1 n2; do P[$n]=$(free_port); done
write_config n2 "${P[n2]}" "[app]" "[]"
write_config n1 "${P[n1]}" "[db]" "[tcp://127.0.0.1:${P[n2]}]" "behaviours:
  - name: go
    peers: {node: n2}
    when: {any: go}
    run: [$T/record.sh]
    retries: 3"
start_agent n2
# The victim: 1,024 descriptors, soft and hard, so it can't raise them.
prlimit --nofile=1024:1024 "$CHOREO_BIN" agent -c "$T/n1.yaml" >>"$T/n1.log" 2>&1 &
AGENT_PID[n1]=$!
wait_for "n1 answers on its socket" 10 c n1 status --json
wait_for "n1 and n2 see each other" 10 has_members n2 2
pid=${AGENT_PID[n1]}
[ "$(awk '/Max open files/ {print $4}' "/proc/$pid/limits")" = 1024 ] ||
  fail "the victim's descriptor limit is not 1024"
ok "victim n1 (pid $pid) runs with 1024 descriptors, soft and hard"

# The attacker: opens 1,500 connections, each sending the SP header of a
# PUB socket (0x00 'S' 'P' 0x00, protocol 32 = NN_PUB, 2 reserved bytes),
# and, given "again", reconnects those the victim closes.
cat > "$T/flood.py" <<'PY'
import errno, resource, selectors, socket, sys, time
port, want, secs, out = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
again = sys.argv[5] == "again"
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
HDR = b"\x00SP\x00\x00\x20\x00\x00"
sel = selectors.DefaultSelector()
conns, opened, closed, peak = {}, 0, 0, 0
end = time.monotonic() + secs
while time.monotonic() < end:
    for _ in range(min(100, want - (len(conns) if again else opened))):
        s = socket.socket()
        s.setblocking(False)
        if s.connect_ex(("127.0.0.1", port)) not in (0, errno.EINPROGRESS):
            s.close()
            break
        conns[s] = False
        opened += 1
        sel.register(s, selectors.EVENT_WRITE)
    for key, ev in sel.select(0.05):
        s = key.fileobj
        gone = False
        if not conns[s]:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                try:
                    s.send(HDR)
                    conns[s] = True
                    sel.modify(s, selectors.EVENT_READ)
                except OSError:
                    gone = True
            else:
                gone = True
        else:
            try:
                gone = s.recv(64) == b""  # the victim's own header, or EOF
            except OSError:
                gone = True
        if gone:
            sel.unregister(s)
            s.close()
            del conns[s]
            closed += 1
    peak = max(peak, sum(conns.values()))
with open(out, "w") as f:
    f.write("opened %d closed_by_victim %d peak_established %d\n" % (opened, closed, peak))
PY
cpu_ticks() { awk '{ split($0, a, ") "); split(a[2], f, " "); print f[12] + f[13] }' "/proc/$pid/stat"; }
ms() { echo $(( ($(date +%s%N) - t0) / 1000000 )); }

# flood SECONDS MODE: run the attacker and watch the victim meanwhile.
# Sets worst_status, worst_gap, lost (n2 saw n1 lost), deaf (n1 saw n2
# lost), rss_peak, cpu_ms, flood_ms; triggers the behaviour at 4 s when
# TRIGGER=1, noting triggered and ran_at (ms from the start).
flood() {
  local secs=$1 mode=$2 cpu0 s0 took view st gap rss samples=0
  /usr/bin/python3 "$T/flood.py" "${P[n1]}" 1500 "$secs" "$T/flood.out" "$mode" &
  local flooder=$!
  t0=$(date +%s%N) cpu0=$(cpu_ticks)
  worst_status=0 worst_gap=0 lost=0 deaf=0 rss_peak=0 triggered=0 ran_at=""
  while kill -0 "$flooder" 2>/dev/null; do
    s0=$(date +%s%N)
    timeout 2 "$CHOREO_BIN" status --socket "$T/n1.sock" --json >/dev/null ||
      fail "choreo status on the victim did not answer within 2 s at $(ms) ms ($mode flood)"
    took=$(( ($(date +%s%N) - s0) / 1000000 ))
    [ "$took" -le "$worst_status" ] || worst_status=$took
    view=$(c n2 status --json | jq -r '.peers[] | select(.name == "n1") | "\(.state) \(.last_seen_ms)"')
    read -r st gap <<<"$view"
    [ "$st" != lost ] || lost=1
    [ "${gap:-0}" -le "$worst_gap" ] || worst_gap=$gap
    [ "$(state_seen n1 n2)" != lost ] || deaf=1
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    [ "$rss" -le "$rss_peak" ] || rss_peak=$rss
    samples=$((samples + 1))
    if [ "${TRIGGER:-0}" = 1 ] && [ "$triggered" = 0 ] && [ "$(ms)" -ge 4000 ]; then
      c n2 set go >/dev/null
      triggered=$(ms)
    fi
    if [ "$triggered" != 0 ] && [ -z "$ran_at" ] && [ "$(calls n1 go)" -ge 1 ]; then
      ran_at=$(ms)
    fi
    sleep 0.2
  done
  wait "$flooder"
  flood_ms=$(ms)
  cpu_ms=$(( ($(cpu_ticks) - cpu0) * 1000 / $(getconf CLK_TCK) ))
  echo "# $mode flood: attacker $(cat "$T/flood.out")"
  echo "# $mode flood: victim over ${flood_ms} ms: peak RSS ${rss_peak} KiB, CPU ${cpu_ms} ms ($((cpu_ms * 100 / flood_ms))% of a core), $samples samples"
  echo "# $mode flood: slowest choreo status ${worst_status} ms; longest heartbeat gap seen by n2 ${worst_gap} ms"
  echo "# $mode flood: inbox idle connections closed $(metric n1 choreo_inbox_idle_closed_total), resets $(metric n1 choreo_inbox_resets_total), descriptors $(metric n1 choreo_open_descriptors)"
  [ "$(awk '{print $6}' "$T/flood.out")" -ge 500 ] ||
    fail "the $mode flood never held 500 connections at once: not a flood"
  ok "$mode flood: choreo status answered within 2 s throughout (slowest ${worst_status} ms)"
  [ "$lost" = 0 ] || fail "$mode flood: n2 saw the victim lost (longest gap ${worst_gap} ms)"
  ok "$mode flood: n2 never saw the victim lost (longest heartbeat gap ${worst_gap} ms)"
}

# ---- 1. idle connections, opened once
flood "$IDLE_S" idle
closed=$(metric n1 choreo_inbox_idle_closed_total)
[ "${closed:-0}" -ge 500 ] || fail "idle connections closed: ${closed:-absent}"
ok "idle flood: the victim closed $closed connections that only sent a header"
resets=$(metric n1 choreo_inbox_resets_total)
[ "$resets" = 0 ] && [ "$deaf" = 0 ] ||
  fail "idle flood: the victim reset its inbox ($resets) or stopped hearing n2"
ok "idle flood: no inbox reset, the victim kept hearing n2 (its connection stayed)"
wait_for "the victim's descriptors are back to normal" 10 \
  test "$(metric n1 choreo_open_descriptors)" -lt 100

# ---- 2. the same connections, reopened as fast as they are closed
TRIGGER=1 flood "$ATTACK_S" again
attack_end=$flood_ms
[ "$triggered" != 0 ] || fail "the behaviour was never triggered"
if [ -z "$ran_at" ]; then
  wait_for "the behaviour runs within 5 s after the flood" 5 has_calls n1 go "" 1
  ran_at=$(ms)
fi
[ "$ran_at" -le $((attack_end + 5000)) ] || fail "the behaviour ran at $ran_at ms, more than 5 s after the flood"
ok "the behaviour triggered at ${triggered} ms ran at ${ran_at} ms (flood ended at ${attack_end} ms)"
wait_for "n1 hears n2 again after the flood" 10 sees n1 n2 go
ok "after the flood the victim hears its peer again"
