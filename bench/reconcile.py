"""Full reconcile at scale: the engine against csv-diff and a bare Python diff.

    python -m bench.reconcile --people 1000000
    python -m bench.reconcile --people 200000 --expressions 10 --rounds 3 --skip-csv-diff
    python -m bench.reconcile --people 200000 --skip-csv-diff \
        --database-url postgresql://rostersync@127.0.0.1:5432/rostersync_bench

Generates an HRIS export and a stored LMS state (the database after the previous export
was synced), then a new export with 1% of people changed, 0.2% added and 0.2% removed,
and times, each in its own process on the same files:
  - the engine's full reconcile (parse, gate, validate, map, diff, plan, persist drift
    and ops; the LMS side comes from the stored state, no network);
  - csv-diff (the tool a user would reach for);
  - a bare line-by-key Python diff (the floor: no parsing, no validation, no storage).

With ``--expressions N`` the engine is timed twice in the same run, on the same exports:
with the default mapping, and with N expression attributes in [mapping.attributes]
(each with its own stored state, seeded with that mapping, so both runs do the same
work but for the expressions); the ratio between them is the cost of the mapping. With
``--rounds R`` both are timed R times, each from its seeded state again and in turns
(which goes first alternates), and the medians are compared: on a shared machine one
pair of runs can differ by more than the mapping costs.

With ``--database-url`` the engine is also timed on PostgreSQL, in the same run, on the
same exports, beside SQLite: the database the URL names is dropped and created again,
seeded the same way, and the engine reconciles against it (password from
$ROSTERSYNC_DB_PASSWORD, as the product reads it).
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
    fresh_pg_database,
    print_table,
    run_child,
    seed_database,
    write_exports,
)

ENGINE = """
import asyncio, json, sys, time
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
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


# Ten [mapping.attributes] expressions of the kinds LMS admins write: logins from
# normalised names, lookups and a switch on them, date formatting and arithmetic,
# coalesce and default, split and join.
_ACME = "urn:acme:params:scim:schemas:extension:lms:2.0:User"
EXPRESSIONS = (
    ("login", 'lower(normalize_diacritics(first_name) + "." + normalize_diacritics(last_name))'),
    ("country", 'lookup("countries", location, "XX")'),
    ("region", 'switch(lookup("countries", location, "XX"), "DE", "EMEA", "FR", "EMEA", '
               '"US", "AMER", "OTHER")'),
    ("cohort", 'format_date(hire_date, "%Y-%m")'),
    ("tenure", 'if(days_since(hire_date) < 365, "first-year", "tenured")'),
    ("manager", 'coalesce(manager_id, preferred_name, "none")'),
    ("workerType", 'upper(default(attributes.worker_type, "employee"))'),
    ("domain", 'split(email, "@", -1)'),
    ("initials", 'upper(left(first_name, 1) + left(last_name, 1))'),
    ("orgPath", 'join(" / ", department, trim(job_title), location)'),
)


def mapping_section(count: int) -> str:
    """The first ``count`` of EXPRESSIONS as config text, with the table they read."""
    lines = ["[mapping.tables.countries]", '"Berlin" = "DE"', '"Paris" = "FR"',
             '"New York" = "US"', "[mapping.attributes]"]
    lines += [f'"{_ACME}:{name}" = \'{text}\'' for name, text in EXPRESSIONS[:count]]
    return "\n".join(lines)


def _stored_state(folder: Path, old: Path, new: Path, extra: str,
                  database_url: str | None = None) -> Path:
    """A config and a database that has synced ``old`` under that mapping; the config
    then reads ``new``."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "rostersync.toml"
    config.write_text(config_text(folder, old, extra=extra, database_url=database_url))
    seeded = seed_database(config)
    print(f"seeded the stored state in {seeded['seed_seconds']}s"
          + (" (expression mapping)" if extra else "")
          + (" (PostgreSQL)" if database_url else ""), flush=True)
    config.write_text(config_text(folder, new, extra=extra, database_url=database_url))
    return config


def _restore(config: Path) -> None:
    """The database of ``config`` as seeding left it (its seeded.db copy)."""
    db = config.parent / "bench.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(config.parent / "seeded.db", db)


def _timed_pair(config: Path, mapped: Path, rounds: int) -> tuple[dict, dict, list[str]]:
    """The default mapping's and the expressions' runs, ``rounds`` times in turns: the
    median run of each, and one line per round."""
    default_runs: list[dict] = []
    mapped_runs: list[dict] = []
    lines = []
    for i in range(rounds):
        order = [(config, default_runs), (mapped, mapped_runs)]
        for path, runs in order if i % 2 == 0 else order[::-1]:
            if rounds > 1:
                _restore(path)
            runs.append(run_child(ENGINE, str(path)))
        lines.append(f"  round {i + 1}: default {default_runs[-1]['seconds']:.2f}s, "
                     f"expressions {mapped_runs[-1]['seconds']:.2f}s "
                     f"({mapped_runs[-1]['seconds'] / default_runs[-1]['seconds']:.2f}x)")

    def median(runs: list[dict]) -> dict:
        return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]

    return median(default_runs), median(mapped_runs), lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--skip-csv-diff", action="store_true")
    parser.add_argument("--keep-seeded", action="store_true",
                        help="keep a copy of the seeded database (seeded.db) for re-runs")
    parser.add_argument("--expressions", type=int, default=0, choices=range(11),
                        metavar="N", help="also time the engine with N (1-10) expression "
                        "attributes mapped, against the default mapping in the same run")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --expressions: time both mappings this many times, in "
                        "turns, each from its seeded state, and compare the medians")
    parser.add_argument("--database-url", default=None, metavar="URL",
                        help="also time the engine on this PostgreSQL database (dropped "
                        "and created again; password from $ROSTERSYNC_DB_PASSWORD)")
    args = parser.parse_args(argv)
    if args.database_url and (args.expressions or args.keep_seeded):
        parser.error("--database-url times the default mapping only (no --expressions, "
                     "--keep-seeded)")
    folder = (args.folder or Path("bench/out") / f"reconcile-{args.people}").resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ.setdefault(TOKEN_ENV, "unused")

    t0 = time.perf_counter()
    old, new, counts = write_exports(folder, args.people, 0.01, 0.002, 0.002)
    print(f"generated {args.people} people in {time.perf_counter() - t0:.1f}s: {counts}",
          flush=True)
    config = _stored_state(folder, old, new, "")
    on_pg = (_stored_state(folder / "postgresql", old, new, "",
                           fresh_pg_database(args.database_url))
             if args.database_url else None)
    mapped = (_stored_state(folder / "expressions", old, new,
                            mapping_section(args.expressions))
              if args.expressions else None)
    if mapped is not None and args.rounds > 1:
        for path in (config, mapped):
            shutil.copyfile(path.parent / "bench.db", path.parent / "seeded.db")
    elif args.keep_seeded:
        # So that the measured run can be repeated or profiled from the same stored state.
        # Off by default: a second 2.7 GB file competes with the database for the page
        # cache, and on a machine with little of it the measured run reads from disk.
        shutil.copyfile(folder / "bench.db", folder / "seeded.db")
    # Flush the seeding's gigabytes to disk now, so that the kernel's write-back does not
    # share the two cores with the measured runs.
    os.sync()

    expressions: dict | None = None
    rounds: list[str] = []
    if mapped is None:
        engine = run_child(ENGINE, str(config))
    else:
        engine, expressions, rounds = _timed_pair(config, mapped, max(1, args.rounds))
    rows = [("rostersync full reconcile", engine)]
    pg_engine = run_child(ENGINE, str(on_pg)) if on_pg is not None else None
    if pg_engine is not None:
        rows.append(("  on PostgreSQL", pg_engine))
    if expressions is not None:
        rows.append((f"  with {args.expressions} expression attributes", expressions))
    floor = run_child(FLOOR, str(old), str(new))
    rows.append(("bare Python diff (floor)", floor))
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
        if pg_engine is not None:
            same = pg_engine.get("counts") == engine.get("counts")
            out.append(f"PostgreSQL / SQLite = {pg_engine['seconds'] / engine['seconds']:.2f}x"
                       f"  (peak RSS {pg_engine['peak_rss_mb']:.0f} MB; "
                       f"{'the same' if same else 'DIFFERENT'} counts)")
        if expressions:
            same = expressions.get("counts") == engine.get("counts")
            out.append(f"{args.expressions} expressions / default mapping = "
                       f"{expressions['seconds'] / engine['seconds']:.2f}x  (target <= 1.30x"
                       f"{'; medians of ' + str(len(rounds)) + ' rounds' if len(rounds) > 1 else ''}"
                       f"; {'the same' if same else 'DIFFERENT'} counts)")
            out.extend(rounds if len(rounds) > 1 else [])
        return out

    print_table(f"full reconcile, {args.people} people, "
                f"{counts['changed']} changed / {counts['added']} added / "
                f"{counts['removed']} removed", rows, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
