#!/usr/bin/python3
"""faultproxy.py — a transparent TCP proxy that delays every stream, for
the fault suite. nftables redirects the agents' outgoing connections to
--port; the proxy finds where each was going (SO_ORIGINAL_DST), connects
there with --mark on its socket (so that nftables lets it pass), and
forwards each chunk of bytes DELAY ± JITTER ms after it arrived, in order
(TCP delivers a stream in order: on it, reordering becomes delay)."""
import argparse
import asyncio
import random
import socket
import struct

SO_ORIGINAL_DST = 80


def original_dst(sock):
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, ip = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(ip), port


async def pump(reader, writer, delay, jitter, rng):
    loop = asyncio.get_running_loop()
    last = 0.0
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            due = max(last, loop.time() + (delay + rng.uniform(-jitter, jitter)) / 1000)
            last = due
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delay-ms", type=float, default=200)
    ap.add_argument("--jitter-ms", type=float, default=100)
    ap.add_argument("--mark", type=int, default=42)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)

    async def handle(reader, writer):
        host, port = original_dst(writer.get_extra_info("socket"))
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, a.mark)
        s.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(s, (host, port))
            r2, w2 = await asyncio.open_connection(sock=s)
        except OSError:
            s.close()
            writer.close()
            return
        await asyncio.gather(pump(reader, w2, a.delay_ms, a.jitter_ms, rng),
                             pump(r2, writer, a.delay_ms, a.jitter_ms, rng))

    server = await asyncio.start_server(handle, "0.0.0.0", a.port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
