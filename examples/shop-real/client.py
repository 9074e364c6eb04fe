#!/usr/bin/env python3
"""A steady HTTP client for the real shop: loopback only, bounded.

client.py URL LOG [--keepalive] [--rate N] [--max-requests N]
          [--max-seconds S] [--stop-file F]

Sends GET URL about N times a second (default 50) until the stop file
exists, --max-requests were sent or --max-seconds passed, whichever comes
first. With --keepalive it reuses one HTTP/1.1 connection (reopened after
a connection error, which is logged); without, each request opens a fresh
connection. One line per request in LOG:

    MONOTONIC_NS STATUS RETRY_AFTER PAGE

STATUS is the HTTP status or "error:REASON" (the connection failed or was
closed under a request), RETRY_AFTER the header's value or "-", PAGE
"shop", "holding" or "other" from the body.
"""
import argparse
import http.client
import os
import sys
import time
import urllib.parse


def page_of(body):
    if b"Welcome" in body:
        return "shop"
    if b"Maintenance" in body:
        return "holding"
    return "other"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("log")
    ap.add_argument("--keepalive", action="store_true")
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--max-requests", type=int, default=5000)
    ap.add_argument("--max-seconds", type=float, default=120)
    ap.add_argument("--stop-file")
    a = ap.parse_args()
    u = urllib.parse.urlsplit(a.url)
    if u.scheme != "http" or u.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("client.py: only http:// to loopback")
    port = u.port or 80
    path = u.path or "/"
    period = 1.0 / a.rate
    end = time.monotonic() + a.max_seconds
    conn = None
    with open(a.log, "a", buffering=1) as log:
        for _ in range(a.max_requests):
            if time.monotonic() >= end or (a.stop_file and os.path.exists(a.stop_file)):
                break
            t = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(u.hostname, port, timeout=5)
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read()
                line = "%d %d %s %s" % (time.monotonic_ns(), r.status,
                                         r.getheader("Retry-After", "-"), page_of(body))
                if not a.keepalive or r.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                line = "%d error:%s - -" % (time.monotonic_ns(), type(e).__name__)
                if conn is not None:
                    conn.close()
                conn = None
            log.write(line + "\n")
            left = period - (time.monotonic() - t)
            if left > 0:
                time.sleep(left)
    if conn is not None:
        conn.close()


if __name__ == "__main__":
    main()
