"""A delta run among a million people costs in proportion to the change.

    python -m bench.delta --people 1000000 --changes 1000

Reuses the stored state that bench.reconcile seeded for the same population (or seeds
it), drops a changes-only export of N people, and times the engine's delta run (parse,
validate, map, diff against the stored LMS state, plan, persist; no network). For scale,
the same run is timed with 10x the changes: a delta's cost should follow the change,
not the population.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from pathlib import Path

from bench.common import TOKEN_ENV, config_text, line_for, run_child, seed_database, write_exports
from rostersync.sandbox.world import HEADER

DELTA = """
import asyncio, json, sys, time
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
engine = Engine(load_config(sys.argv[1]))
t0 = time.perf_counter()
report = asyncio.run(engine.sync("delta", lms_read="cached", apply=False, trigger="bench"))
print(json.dumps({"seconds": round(time.perf_counter() - t0, 3), "status": report.status,
                  "counts": report.counts}))
"""


def seeded_folder(people: int) -> Path:
    folder = (Path("bench/out") / f"reconcile-{people}").resolve()
    if not (folder / "seeded.db").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        old, _new, _counts = write_exports(folder, people, 0.01, 0.002, 0.002)
        (folder / "rostersync.toml").write_text(config_text(folder, old))
        seed_database(folder / "rostersync.toml")
        shutil.copyfile(folder / "bench.db", folder / "seeded.db")
    return folder


def measure(folder: Path, people: int, changes: int, seed: int) -> dict:
    work = folder / f"delta-{changes}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    shutil.copyfile(folder / "seeded.db", work / "bench.db")
    rng = random.Random(seed)
    delta = work / "changes.csv"
    with delta.open("w") as fh:
        fh.write(",".join(HEADER) + "\n")
        for i in rng.sample(range(2, people + 1), changes):
            fh.write(line_for(i, department="Finance" if i % 5 != 2 else "Sales"))
    config = work / "rostersync.toml"
    config.write_text(config_text(work, folder / "old.csv", delta_path=delta))
    return run_child(DELTA, str(config))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=1000)
    args = parser.parse_args(argv)
    os.environ.setdefault(TOKEN_ENV, "unused")
    folder = seeded_folder(args.people)
    small = measure(folder, args.people, args.changes, 1)
    large = measure(folder, args.people, args.changes * 10, 2)
    print(f"\ndelta run among {args.people} people (stored LMS state, no network)")
    print(f"{'':<34}{'seconds':>10}{'peak RSS MB':>14}")
    for name, r in ((f"{args.changes} changed", small), (f"{args.changes * 10} changed", large)):
        print(f"{name:<34}{r['seconds']:>10.3f}{r['peak_rss_mb']:>14.1f}")
    print(f"counts ({args.changes}): planned {small['counts'].get('planned')}, "
          f"evaluated {small['counts'].get('evaluated')}")
    print(f"10x the changes costs {large['seconds'] / small['seconds']:.1f}x the time; "
          f"{args.changes} changes take {small['seconds']:.3f}s (target < 1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
