#!/usr/bin/env python3
"""forge.py — hostile senders for the scenario tests (hostile_bloat.sh,
hostile_log.sh). It speaks to an agent's inbox as an attacker would, with
libnanomsg and libsodium through ctypes (no module beyond the standard
library), and paces its sends: PUB drops what doesn't fit in the pipe.

  forge.py bloat KEYFILE ADDR NODES KEYS VALUE_BYTES
      NODES state messages, each from a node of its own (bloat00001, ...)
      with KEYS data values of VALUE_BYTES bytes, sealed with the first key
      of KEYFILE: what a key holder can send (docs/SECURITY.md). They carry
      no nonce, so they are judged by their time as an earlier version's
      are; the whole list is sent twice.
  forge.py flood KEYFILE ADDR COUNT SECONDS
      COUNT messages spread over SECONDS, in turn: bytes no key opens
      (unauthenticated), sealed bytes that are not JSON (not_json), and a
      sealed state from "intruder" with a nonce that never proves itself
      (stale).

Exit status: 0 sent, 1 failure, 2 usage.
"""
import base64
import ctypes
import ctypes.util
import json
import os
import sys
import time

AF_SP = 1
NN_PUB = 32
NONCE = 24


def libs():
    nn = ctypes.CDLL(ctypes.util.find_library("nanomsg") or "libnanomsg.so.5")
    na = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
    if na.sodium_init() < 0:
        raise SystemExit("forge: sodium_init failed")
    nn.nn_send.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t,
                           ctypes.c_int]
    nn.nn_connect.argtypes = [ctypes.c_int, ctypes.c_char_p]
    na.crypto_secretbox_easy.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                         ctypes.c_ulonglong, ctypes.c_char_p,
                                         ctypes.c_char_p]
    return nn, na


def first_key(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                key = base64.b64decode(line)
                if len(key) != 32:
                    raise SystemExit("forge: %s: not a 32-byte key" % path)
                return key
    raise SystemExit("forge: %s: no key" % path)


def seal(na, key, msg):
    nonce = os.urandom(NONCE)
    out = ctypes.create_string_buffer(len(msg) + 16)
    na.crypto_secretbox_easy(out, msg, len(msg), nonce, key)
    return nonce + out.raw


def pub(nn, addr):
    s = nn.nn_socket(AF_SP, NN_PUB)
    if s < 0 or nn.nn_connect(s, addr.encode()) < 0:
        raise SystemExit("forge: cannot connect to %s" % addr)
    time.sleep(0.3)  # PUB drops what is sent before the connection is up
    return s


def now_ms():
    return int(time.time() * 1000)


def state(name, data, nonce=None):
    m = {"v": 1, "cluster": "test", "from": name, "inc": int(time.time()),
         "seq": 1, "time": now_ms(), "type": "state",
         "digest": "0000000000000000", "known": 1,
         "rec": {"addr": "tcp://127.0.0.1:1", "ver": 1, "left": False,
                 "state": "ready", "reason": "forged", "since": now_ms(),
                 "groups": ["bloat"], "data": data}}
    if nonce is not None:
        m["nonce"] = nonce
    return json.dumps(m, separators=(",", ":")).encode()


def bloat(keyfile, addr, nodes, keys, size):
    nn, na = libs()
    key = first_key(keyfile)
    s = pub(nn, addr)
    data = {"k%02d" % k: "x" * size for k in range(keys)}
    msgs = [seal(na, key, state("bloat%05d" % i, data)) for i in range(nodes)]
    biggest = max(len(m) for m in msgs)
    for _ in range(2):
        for m in msgs:
            nn.nn_send(s, m, len(m), 0)
            time.sleep(0.001)
        time.sleep(0.5)
    print("sent %d messages of up to %d bytes, twice" % (nodes, biggest))
    nn.nn_close(s)


def flood(keyfile, addr, count, seconds):
    nn, na = libs()
    key = first_key(keyfile)
    s = pub(nn, addr)
    kinds = [
        lambda: os.urandom(200),
        lambda: seal(na, key, b"this is not json"),
        lambda: seal(na, key, state("intruder", {}, "0123456789abcdef")),
    ]
    gap = seconds / count
    t0 = time.monotonic()
    for i in range(count):
        m = kinds[i % len(kinds)]()
        nn.nn_send(s, m, len(m), 0)
        late = t0 + (i + 1) * gap - time.monotonic()
        if late > 0:
            time.sleep(late)
    print("sent %d messages in %.1f s" % (count, time.monotonic() - t0))
    nn.nn_close(s)


def main(argv):
    if len(argv) == 7 and argv[1] == "bloat":
        bloat(argv[2], argv[3], int(argv[4]), int(argv[5]), int(argv[6]))
    elif len(argv) == 6 and argv[1] == "flood":
        flood(argv[2], argv[3], int(argv[4]), float(argv[5]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
