#!/usr/bin/python3
"""Count test cases from meson's testlog.json: cmocka's per-case results
for unit tests, "ok - " / "FAIL:" lines for scenario tests, "SKIP:" lines
for skipped parts. A test program that failed without saying which case
counts as one failure. Further arguments are plain logs (the fuzzing runs
of scripts/fuzz.sh) whose "ok - " / "FAIL: " / "SKIP: " lines count too.
Prints "N passed, N failed, N skipped"."""
import json
import re
import sys

passed = failed = skipped = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    out = (t.get("stdout") or "") + "\n" + (t.get("stderr") or "")
    ok_result = t["result"] in ("OK", "EXPECTEDFAIL")
    cm_pass = re.findall(r"^\[  PASSED  \] (\d+) test", out, re.M)
    cm_fail = re.findall(r"^\[  FAILED  \] (\d+) test", out, re.M)
    oks = len(re.findall(r"^ok - ", out, re.M))
    fails = len(re.findall(r"^FAIL: ", out, re.M))
    skips = len(re.findall(r"^SKIP: ", out, re.M))
    p = sum(map(int, cm_pass)) + oks
    f = sum(map(int, cm_fail)) + fails
    if t["result"] == "SKIP":
        skipped += max(1, skips)
        continue
    if not ok_result and f == 0:
        f = 1
    passed += p if (p or not ok_result) else 1
    failed += f
    skipped += skips
for path in sys.argv[2:]:
    try:
        out = open(path, errors="replace").read()
    except OSError:
        failed += 1  # the log a step should have written is missing
        continue
    passed += len(re.findall(r"^ok - ", out, re.M))
    failed += len(re.findall(r"^FAIL: ", out, re.M))
    skipped += len(re.findall(r"^SKIP: ", out, re.M))
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
