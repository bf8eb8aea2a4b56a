#!/usr/bin/env python3
"""table.py RESULTS...: the fault matrix as Markdown tables (docs/faults.md), from the results
files of tests/integration/faults.bats ("survived MODE STEP FAULT" / "FAILED MODE STEP FAULT")."""
import sys

FAULTS = ["fail", "cut", "link-down", "kill-src-ferryd", "kill-dst-ferryd", "kill-src-starter", "kill-src-criu",
          "kill-dst-starter", "kill-dst-criu", "restore-fail", "tmpfs-full", "shared-full"]
STEPS = {
    "default": "src-request src-journal src-prepare src-dump src-restart src-verdict src-commit src-done src-settle dst-prepare dst-ready dst-restore dst-done dst-settle".split(),
    "diskless": "src-request src-journal src-prepare src-dump src-commit src-done src-settle dst-prepare dst-ready dst-restore dst-done dst-settle".split(),
}
STEPS["live"] = STEPS["diskless"]
res = {}
for path in sys.argv[1:]:
    for line in open(path):
        w = line.split()
        if len(w) == 4:
            res[tuple(w[1:])] = w[0]
total = len(res)
ok = sum(1 for v in res.values() if v == "survived")
print("%d cells run, %d survived.\n" % (total, ok))
for mode in ("default", "diskless", "live"):
    cols = [f for f in FAULTS if any((mode, s, f) in res for s in STEPS[mode])]
    print("### %s mode\n" % mode)
    print("| step | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for s in STEPS[mode]:
        cells = [res.get((mode, s, f), "—") for f in cols]
        print("| `%s` | " % s + " | ".join(cells) + " |")
    print()
