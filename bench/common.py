"""Shared benchmark plumbing: generated exports, a seeded database, timing in a child
process (so peak RSS is the measured work's own), and figure printing."""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rostersync.sandbox.world import COLUMNS, DEPARTMENTS, HEADER, ZONES

TOKEN_ENV = "ROSTERSYNC_BENCH_TOKEN"


def line_for(i: int, *, department: str | None = None, status: str = "Active",
             termination: str = "") -> str:
    """One CSV row, built directly (csv.writer would dominate generating a million)."""
    first, last = f"First{i % 997}", f"Last{i % 1013}"
    manager = "" if i == 1 else f"E{(i - 2) // 8 + 1:07d}"
    dept = department or DEPARTMENTS[i % len(DEPARTMENTS)]
    return (f"E{i:07d},{100000 + i},{first},{last},,{first.lower()}.{last.lower()}.{i}"
            f"@acme.example,{dept},Specialist,Berlin,{manager},{status},2020-03-01,"
            f"{termination},{ZONES[i % len(ZONES)]},Employee\n")


def write_exports(folder: Path, people: int, changed: float, added: float, removed: float,
                  seed: int = 7) -> tuple[Path, Path, dict[str, int]]:
    """old.csv (the last accepted export) and new.csv with the given shares changed,
    added and removed. Returns the paths and the counts."""
    rng = random.Random(seed)
    n_changed, n_added, n_removed = (int(people * f) for f in (changed, added, removed))
    removed_ids = set(rng.sample(range(2, people + 1), n_removed))
    pool = [i for i in range(2, people + 1) if i not in removed_ids]
    changed_ids = set(rng.sample(pool, n_changed))
    header = ",".join(HEADER) + "\n"
    old, new = folder / "old.csv", folder / "new.csv"
    with old.open("w") as fo, new.open("w") as fn:
        fo.write(header)
        fn.write(header)
        for i in range(1, people + 1):
            row = line_for(i)
            fo.write(row)
            if i in removed_ids:
                continue
            fn.write(line_for(i, department="Finance" if i % 5 != 2 else "Sales")
                     if i in changed_ids else row)
        for i in range(people + 1, people + n_added + 1):
            fn.write(line_for(i))
    return old, new, {"changed": n_changed, "added": n_added, "removed": n_removed}


def config_text(folder: Path, csv_path: Path, base_url: str = "http://127.0.0.1:9/v2",
                delta_path: Path | None = None, extra: str = "",
                database_url: str | None = None) -> str:
    cols = "\n".join(f'{k} = "{v}"' for k, v in COLUMNS.items())
    depts = "\n".join(f'"{d}" = "{d}"' for d in DEPARTMENTS)
    delta = f'delta_path = "{delta_path}"\n' if delta_path else ""
    database = (f'url = "{database_url}"' if database_url
                else f'path = "{folder / "bench.db"}"')
    return f"""[database]
{database}
[hris]
type = "csv"
path = "{csv_path}"
{delta}[hris.columns]
{cols}
[hris.attributes]
worker_type = "Worker Type"
[lms]
type = "scim"
base_url = "{base_url}"
token_env = "{TOKEN_ENV}"
[mapping]
strict = ["department"]
[mapping.values.department]
{depts}
[guards]
mass_deactivation_min = 100000
{extra}
"""


def seed_database(config_path: Path) -> dict[str, Any]:
    """Make the database look like the LMS already matches old.csv: plan with the engine
    (no network), then record the plan as applied: accounts equal to the desired state."""
    import asyncio

    from rostersync.storage.db import ts
    from rostersync.storage.store_factory import make_store
    from rostersync.sync.clock import Clock
    from rostersync.sync.config import load_config
    from rostersync.sync.engine import Engine

    config = load_config(config_path)
    store = make_store(config.database)
    engine = Engine(config, store)
    t0 = time.perf_counter()
    report = asyncio.run(engine.sync("full", lms_read="cached", apply=False))
    now = ts(Clock().now())
    with store.tx() as conn:
        conn.execute(
            "INSERT INTO accounts(lms_id, external_key, user_name, email, active, data, digest, "
            "seen_at) SELECT 'L' || employee_id, employee_id, json_extract(desired, "
            "'$.user_name'), json_extract(desired, '$.email'), 1, json_set(desired, '$.lms_id', "
            "'L' || employee_id), desired_digest, ? FROM people WHERE desired IS NOT NULL", (now,))
        conn.execute("UPDATE ops SET status = 'succeeded', finished_at = ? "
                     "WHERE status IN ('pending', 'held')", (now,))
        conn.execute("UPDATE drift SET resolved_at = ? WHERE resolved_at IS NULL", (now,))
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if report.status not in ("succeeded", "held"):
        raise RuntimeError(f"seeding failed: {report.status}: {report.message}")
    return {"seed_seconds": round(time.perf_counter() - t0, 1), "seed_run": report.status}


def fresh_pg_database(url: str, suffix: str = "") -> str:
    """The database ``url`` names (plus ``suffix``), dropped and created again empty on
    its server: the benchmark's PostgreSQL runs start from nothing, as its SQLite ones
    do. The password comes from $ROSTERSYNC_DB_PASSWORD or libpq's own."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(url)
    name = parts.path.strip("/") + suffix
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    password = os.environ.get("ROSTERSYNC_DB_PASSWORD") or None
    with psycopg.connect(maintenance, password=password, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


# Peak RSS is read from the child's own /proc/self/status (VmHWM) as it exits: the
# rusage of a forked child also counts its parent's pages from before exec.
_PEAK = """
import atexit as _atexit, sys as _sys
def _peak():
    for _line in open("/proc/self/status"):
        if _line.startswith("VmHWM:"):
            _sys.stderr.write("\\nPEAK_RSS_KB " + _line.split()[1] + "\\n")
_atexit.register(_peak)
"""


def run_child(code: str, *args: str) -> dict[str, Any]:
    """Run `code` (a python -c program that prints one JSON line) in a child; add its
    wall time and peak RSS."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _PEAK + code, *args], capture_output=True,
                          env=os.environ.copy(), check=False)
    wall = time.perf_counter() - t0
    out, err = proc.stdout.decode(), proc.stderr.decode()
    if proc.returncode not in (0,):
        raise RuntimeError(f"benchmark child failed ({proc.returncode}): {err[-2000:]}")
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        result = {}
    result.setdefault("seconds", round(wall, 3))
    result["wall_seconds"] = round(wall, 3)
    peak = [line for line in err.splitlines() if line.startswith("PEAK_RSS_KB ")]
    result["peak_rss_mb"] = round(int(peak[-1].split()[1]) / 1024, 1) if peak else float("nan")
    return result


def print_table(title: str, rows: list[tuple[str, dict[str, Any]]],
                notes: Callable[[], list[str]] | None = None) -> None:
    print(f"\n{title}")
    print(f"{'':<34}{'seconds':>10}{'peak RSS MB':>14}")
    for name, r in rows:
        print(f"{name:<34}{r['seconds']:>10.2f}{r['peak_rss_mb']:>14.1f}")
    for line in (notes() if notes else []):
        print(line)


def self_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
