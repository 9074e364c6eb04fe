#!/usr/bin/env python3
"""cdp.py: a tiny Chrome DevTools Protocol client for
tests/scenario/http_browser.sh, over python3-websocket.

  cdp.py PORT eval EXPR                 print the value of EXPR in the page
  cdp.py PORT wait EXPR VALUE SECS      poll until EXPR == VALUE (exit 1 at
                                        the deadline, printing the last value)
  cdp.py PORT change EXPR VALUE SECS -- CMD...
                                        run CMD, then poll until EXPR ==
                                        VALUE; print the milliseconds from
                                        the start of CMD
  cdp.py PORT shot FILE                 save a PNG screenshot of the page
"""
import base64
import json
import subprocess
import sys
import time
import urllib.request

import websocket


class Page:
    def __init__(self, port):
        deadline = time.time() + 20
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json" % port) as r:
                    targets = json.load(r)
                url = next(t["webSocketDebuggerUrl"] for t in targets
                           if t.get("type") == "page")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        self.ws = websocket.create_connection(url, timeout=10,
                                              suppress_origin=True)
        self.next = 0

    def call(self, method, **params):
        self.next += 1
        self.ws.send(json.dumps({"id": self.next, "method": method,
                                 "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg["result"]

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r.get("result", {}).get("value")


def poll(page, expr, value, secs):
    deadline = time.time() + secs
    last = None
    while time.time() < deadline:
        last = page.eval(expr)
        if str(last) == value:
            return True, last
        time.sleep(0.01)
    return False, last


def main():
    port, cmd = int(sys.argv[1]), sys.argv[2]
    page = Page(port)
    if cmd == "eval":
        print(page.eval(sys.argv[3]))
    elif cmd == "wait":
        okay, last = poll(page, sys.argv[3], sys.argv[4], float(sys.argv[5]))
        if not okay:
            print(last)
            sys.exit(1)
    elif cmd == "change":
        expr, value, secs = sys.argv[3], sys.argv[4], float(sys.argv[5])
        argv = sys.argv[sys.argv.index("--") + 1:]
        t0 = time.time()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        okay, last = poll(page, expr, value, secs)
        if not okay:
            print("last value: %s" % last)
            sys.exit(1)
        print(int((time.time() - t0) * 1000))
    elif cmd == "shot":
        r = page.call("Page.captureScreenshot", format="png")
        with open(sys.argv[3], "wb") as f:
            f.write(base64.b64decode(r["data"]))


if __name__ == "__main__":
    main()
