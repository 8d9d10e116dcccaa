"""Full reconcile at scale: the engine against csv-diff and a bare Python diff.

    python -m bench.reconcile --people 1000000

Generates an HRIS export and a stored LMS state (the database after the previous export
was synced), then a new export with 1% of people changed, 0.2% added and 0.2% removed,
and times, each in its own process on the same files:
  - the engine's full reconcile (parse, gate, validate, map, diff, plan, persist drift
    and ops; the LMS side comes from the stored state, no network);
  - csv-diff (the tool a user would reach for);
  - a bare line-by-key Python diff (the floor: no parsing, no validation, no storage).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from bench.common import (
    TOKEN_ENV,
    config_text,
    print_table,
    run_child,
    seed_database,
    write_exports,
)

ENGINE = """
import asyncio, json, sys, time
from sync.config import load_config
from sync.engine import Engine
config = load_config(sys.argv[1])
engine = Engine(config)
t0 = time.perf_counter()
report = asyncio.run(engine.sync("full", lms_read="cached", apply=False, trigger="bench"))
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": round(seconds, 3), "status": report.status,
                  "counts": report.counts}))
"""

FLOOR = """
import json, sys, time
t0 = time.perf_counter()
def index(path):
    out = {}
    with open(path, "rb") as fh:
        next(fh)
        for line in fh:
            out[line[:line.index(b",")]] = line
    return out
old, new = index(sys.argv[1]), index(sys.argv[2])
added = [k for k in new if k not in old]
removed = [k for k in old if k not in new]
changed = [k for k, v in new.items() if k in old and old[k] != v]
print(json.dumps({"seconds": round(time.perf_counter() - t0, 3), "added": len(added),
                  "removed": len(removed), "changed": len(changed)}))
"""


# csv-diff's own command, run in-process so that its time includes start-up like a user's.
CSV_DIFF = """
import os, sys
sys.stdout = open(os.devnull, "w")
from csv_diff import cli
try:
    cli.cli.main(args=[sys.argv[1], sys.argv[2], "--key=Employee ID"], standalone_mode=False)
except SystemExit:
    pass
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--skip-csv-diff", action="store_true")
    parser.add_argument("--keep-seeded", action="store_true",
                        help="keep a copy of the seeded database (seeded.db) for re-runs")
    args = parser.parse_args(argv)
    folder = (args.folder or Path("bench/out") / f"reconcile-{args.people}").resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ.setdefault(TOKEN_ENV, "unused")

    t0 = time.perf_counter()
    old, new, counts = write_exports(folder, args.people, 0.01, 0.002, 0.002)
    print(f"generated {args.people} people in {time.perf_counter() - t0:.1f}s: {counts}",
          flush=True)
    config = folder / "rostersync.toml"
    config.write_text(config_text(folder, old))
    seeded = seed_database(config)
    print(f"seeded the stored state in {seeded['seed_seconds']}s", flush=True)
    config.write_text(config_text(folder, new))
    if args.keep_seeded:
        # So that the measured run can be repeated or profiled from the same stored state.
        # Off by default: a second 2.7 GB file competes with the database for the page
        # cache, and on a machine with little of it the measured run reads from disk.
        shutil.copyfile(folder / "bench.db", folder / "seeded.db")
    # Flush the seeding's gigabytes to disk now, so that the kernel's write-back does not
    # share the two cores with the measured runs.
    os.sync()

    engine = run_child(ENGINE, str(config))
    floor = run_child(FLOOR, str(old), str(new))
    rows = [("rostersync full reconcile", engine), ("bare Python diff (floor)", floor)]
    csv_diff = None
    if not args.skip_csv_diff:
        csv_diff = run_child(CSV_DIFF, str(old), str(new))
        rows.append(("csv-diff --key", csv_diff))

    def notes() -> list[str]:
        out = [f"engine counts: {json.dumps(engine.get('counts', {}), sort_keys=True)}",
               f"engine / floor   = {engine['seconds'] / floor['seconds']:.2f}x  (target <= 2.5x)"]
        if csv_diff:
            out.append(f"engine / csv-diff = {engine['seconds'] / csv_diff['seconds']:.2f}x  "
                       "(target <= 0.25x)")
        out.append(f"engine peak RSS  = {engine['peak_rss_mb']:.0f} MB  (target < 500 MB)")
        return out

    print_table(f"full reconcile, {args.people} people, "
                f"{counts['changed']} changed / {counts['added']} added / "
                f"{counts['removed']} removed", rows, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
